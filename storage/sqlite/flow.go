package sqlite

import (
	"context"

	"github.com/errandhq/errand/storage"
)

// TakeTokens takes from a bucket held in the process: SQLite serves one
// node, so the limit is exact without a write (a take costs a map lookup
// under a mutex, not a transaction on the one writer).
func (s *Store) TakeTokens(ctx context.Context, p storage.TakeParams) (storage.Take, error) {
	if err := ctx.Err(); err != nil {
		return storage.Take{}, err
	}
	return s.buckets.Take(p), nil
}
