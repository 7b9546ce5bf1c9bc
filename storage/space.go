package storage

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand"
)

// FullRetryAfter is how long clients are told to wait after storage_full:
// space comes back when an operator frees it, not in a second.
const FullRetryAfter = 10 * time.Second

// Full is the error a driver answers a write with when the disk (or the
// database server's disk) has no space left. Nothing of the failed write is
// kept; writes work again, by themselves, once space is freed.
func Full() error {
	return &errand.Error{Code: errand.ESTORAGEFULL, Message: "the store has no space left; writes fail until space is freed",
		RetryAfter: FullRetryAfter}
}

// Space remembers whether a store's writes are failing for want of space, so
// that readiness fails while they do. The zero value is a store with space.
type Space struct{ full atomic.Bool }

// Observe records the outcome of a write: storage_full marks the store full.
// Only Check marks it writable again: a transaction that happened to write
// nothing (a sweep that found no work) commits on a full disk too. It returns
// err.
func (s *Space) Observe(err error) error {
	if errand.ErrorCode(err) == errand.ESTORAGEFULL {
		s.full.Store(true)
	}
	return err
}

// Full reports whether a write failed for want of space since Check last
// found that writes work.
func (s *Space) Full() bool { return s.full.Load() }

// Check is what a store's Ping adds for space: nothing while writes work;
// once one has failed for want of space, one small write (a setting) finds
// out whether they work again, so readiness comes back by itself once space
// is freed, even when nothing else writes.
func (s *Space) Check(ctx context.Context, st Store) error {
	if !s.Full() {
		return nil
	}
	err := st.WithTx(ctx, func(tx Tx) error {
		return tx.PutSetting("space_probe", time.Now().UTC().Format(time.RFC3339Nano))
	})
	switch {
	case err == nil:
		s.full.Store(false)
	case errand.ErrorCode(err) == errand.ESTORAGEFULL:
		return err
	}
	return nil // it wrote, or failed for a reason Ping reports otherwise
}
