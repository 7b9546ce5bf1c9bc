package storage

import (
	"context"
	"sync"
	"time"

	"github.com/errandhq/errand"
)

// TakeParams asks a rate limit's bucket for tokens (GCRA: the bucket is its
// theoretical arrival time, TAT).
type TakeParams struct {
	// Key names the bucket: the limit and the key's value.
	Key string
	// N is how many tokens to take (1 a request; a batch takes one per job).
	N int
	// Interval is one token's share of the rate (errand.Rate.Interval).
	Interval time.Duration
	// Burst is how many tokens a full bucket holds (at least 1).
	Burst int
	// Now is the time of the take.
	Now time.Time
}

// Take is a bucket's answer.
type Take struct {
	// Admitted is whether the tokens were taken (all N, or none).
	Admitted bool
	// TAT is the bucket's theoretical arrival time after the take: the
	// bucket is full again at TAT, and it has room for the next token at
	// TAT - Burst*Interval + Interval.
	TAT time.Time
}

// FlowReader is what admission reads and takes outside a transaction.
type FlowReader interface {
	// TakeTokens takes p.N tokens from p.Key's bucket if it holds them at
	// p.Now, atomically: concurrent takes, from any node sharing the store,
	// never take more than the bucket holds. The buckets need not be
	// durable (PostgreSQL keeps them in an unlogged table, SQLite in the
	// process): after a crash every bucket starts full.
	TakeTokens(ctx context.Context, p TakeParams) (Take, error)
	// QueueDepth counts the queued jobs of operation.
	QueueDepth(ctx context.Context, operation string) (int, error)
	// QueueAhead counts the queued jobs of j's operation that run before j
	// (priority, then run_at, then id, as QueuedJobs orders them), at most
	// limit of them (a count past it answers limit: the count reads an
	// index entry per job).
	QueueAhead(ctx context.Context, j *errand.Job, limit int) (int, error)
	// Started counts the jobs of operation whose (latest) attempt started at
	// or after since, and returns the earliest such start (zero when none).
	Started(ctx context.Context, operation string, since time.Time) (int, time.Time, error)
}

// FlowTx is what admission checks in a submit's transaction.
type FlowTx interface {
	// CountQueued counts queued jobs of operation, at most limit of them
	// (limit bounds the work: a count past it answers limit). With key set,
	// only the jobs whose queue key (errand.Job.QueueKey) is key count.
	CountQueued(operation, key string, limit int) (int, error)
	// UniqueJob returns the id of the job that holds key among operation's
	// unique jobs, or ErrNotFound. On drivers with row locks the record is
	// locked for the transaction.
	UniqueJob(operation, key string) (string, error)
	// PutUniqueJob makes jobID hold key. Without replace the record must be
	// new: a record another transaction holds makes the call (or, at the
	// latest, WithTx) fail, and PostgreSQL then runs the transaction's
	// function again, when it finds that record.
	PutUniqueJob(operation, key, jobID string, replace bool) error
}

// GCRA takes p's tokens from a bucket whose theoretical arrival time is tat
// (zero for a bucket never used): the arithmetic every driver follows. The
// take fits when the new TAT, max(tat, now) + N·Interval, lies no further
// than Burst·Interval past now.
func GCRA(tat time.Time, p TakeParams) Take {
	base := p.Now
	if tat.After(base) {
		base = tat
	}
	next := base.Add(time.Duration(p.N) * p.Interval)
	if next.Sub(p.Now) > time.Duration(p.Burst)*p.Interval {
		return Take{TAT: base}
	}
	return Take{Admitted: true, TAT: next}
}

// Buckets are rate-limit buckets held in the process (a driver that serves
// one node: SQLite). The zero value is ready.
type Buckets struct {
	mu    sync.Mutex
	tat   map[string]time.Time
	swept time.Time
}

// Take takes p's tokens (see FlowReader.TakeTokens). Full buckets are
// forgotten once a minute, so the map holds the keys of the last minute or so.
func (b *Buckets) Take(p TakeParams) Take {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tat == nil {
		b.tat = map[string]time.Time{}
	}
	if p.Now.Sub(b.swept) > time.Minute {
		for k, t := range b.tat {
			if !t.After(p.Now) {
				delete(b.tat, k)
			}
		}
		b.swept = p.Now
	}
	t := GCRA(b.tat[p.Key], p)
	if t.Admitted {
		b.tat[p.Key] = t.TAT
	}
	return t
}
