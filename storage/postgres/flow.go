package postgres

import (
	"context"
	"time"

	"github.com/errandhq/errand/storage"
)

// qTakeTokens is storage.GCRA in one statement on the unlogged rate_limits
// table (migration 0014): the row lock serializes the takes of one bucket
// across nodes, and the statement commits on its own without waiting for a
// WAL flush (nothing it writes is logged). $1 key, $2 now, $3 the take's
// cost N·Interval, $4 the bucket's depth Burst·Interval, all in nanoseconds
// (a rate of a million a second has an interval under a microsecond). A SET's
// expressions all read the row as it was.
const qTakeTokens = `INSERT INTO rate_limits AS r (key, tat, admitted)
	VALUES ($1, CASE WHEN $3::bigint <= $4::bigint THEN $2::bigint + $3::bigint ELSE $2::bigint END, $3::bigint <= $4::bigint)
	ON CONFLICT (key) DO UPDATE SET
		admitted = greatest(r.tat, $2::bigint) + $3::bigint - $2::bigint <= $4::bigint,
		tat = CASE WHEN greatest(r.tat, $2::bigint) + $3::bigint - $2::bigint <= $4::bigint
			THEN greatest(r.tat, $2::bigint) + $3::bigint ELSE r.tat END
	RETURNING tat, admitted`

// qSweepBuckets forgets buckets that are full again (their TAT has passed).
const qSweepBuckets = `DELETE FROM rate_limits WHERE tat < $1`

// TakeTokens takes from the bucket shared by every node on the schema; once
// a minute a node also forgets the full buckets.
func (s *Store) TakeTokens(ctx context.Context, p storage.TakeParams) (storage.Take, error) {
	var tat int64
	var t storage.Take
	err := s.pool.QueryRow(ctx, qTakeTokens, p.Key, p.Now.UnixNano(), int64(p.N)*p.Interval.Nanoseconds(),
		int64(p.Burst)*p.Interval.Nanoseconds()).Scan(&tat, &t.Admitted)
	if err != nil {
		return storage.Take{}, interpretError(err)
	}
	t.TAT = time.Unix(0, tat).UTC()
	if !t.Admitted && t.TAT.Before(p.Now) {
		t.TAT = p.Now // a bucket never used, refused a take larger than it holds
	}
	s.sweepBuckets(ctx, p.Now)
	return t, nil
}

func (s *Store) sweepBuckets(ctx context.Context, now time.Time) {
	last := s.swept.Load()
	if storage.Micros(now)-last < time.Minute.Microseconds() || !s.swept.CompareAndSwap(last, storage.Micros(now)) {
		return
	}
	_, _ = s.pool.Exec(ctx, qSweepBuckets, now.UnixNano()) // best effort: the next sweep catches up
}
