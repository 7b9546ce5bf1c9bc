package job

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/admit"
	"github.com/errandhq/errand/storage"
)

// Admission (#15): an operation's rate_limit, max_queued and unique, checked
// on every submit, whatever way it came in.

// Outcome says what a submit did.
type Outcome int

// The outcomes of a submit.
const (
	Created   Outcome = iota // a new job
	Replayed                 // the job an earlier submit with the same Idempotency-Key made
	Duplicate                // the job that holds the submit's unique key (Flow.Unique)
)

// Submitted is a submit's job and what the submit did.
type Submitted struct {
	Job     *errand.Job
	Outcome Outcome
}

// DefaultQueueFullRetry is the Retry-After of a queue_full refusal while
// nothing of the operation drains (no job started in the drain window).
const DefaultQueueFullRetry = 10 * time.Second

// admission is what a submit's transaction checks for its job.
type admission struct {
	// unique is the job's unique key ("" when the operation has none, or
	// the key has no value for this submit); window its Unique.Window.
	unique string
	window time.Duration
	// maxQueued bounds the queue the job joins (0: no bound).
	maxQueued int
	now       time.Time
}

// errQueueFull is the transaction's verdict on a submit beyond max_queued (a
// queue_full answer, so a driver runs nothing again); queueFull adds its
// Retry-After once the transaction is over (reading the drain rate is no
// work for inside one).
type errQueueFull struct {
	err           *errand.Error
	queued, limit int
}

func (e *errQueueFull) Error() string { return e.err.Error() }
func (e *errQueueFull) Unwrap() error { return e.err }

// keySource is where a submit's flow keys take their values.
func keySource(p *errand.Principal, j *errand.Job, sp *SubmitParams) errand.KeySource {
	return errand.KeySource{Principal: p, Input: j.Input, Header: sp.Header}
}

// admissionOf sets the job's queue key and says what its transaction checks.
func admissionOf(op *errand.Operation, src errand.KeySource, j *errand.Job) admission {
	a := admission{now: j.CreatedAt}
	if q := op.Flow.MaxQueued; q != nil {
		a.maxQueued = q.Limit
		if !q.Key.IsZero() {
			j.QueueKey = q.Key.Value(src)
		}
	}
	if u := op.Flow.Unique; u != nil {
		if v := u.Key.Value(src); v != "" { // a submit without the key's value is no duplicate
			a.unique, a.window = j.Tenant+"\x1f"+v, u.Window
		}
	}
	return a
}

// takeRate takes n tokens of the operation's rate limit for the key value.
func (s *Service) takeRate(ctx context.Context, op *errand.Operation, value string, n int) error {
	if op.Flow.RateLimit == nil {
		return nil
	}
	_, err := s.limiter.Take(ctx, op.Name, op.Flow.RateLimit, value, n)
	return err
}

// rateKey is the value of the operation's rate-limit key for a submit.
func rateKey(op *errand.Operation, src errand.KeySource) string {
	if op.Flow.RateLimit == nil {
		return ""
	}
	return op.Flow.RateLimit.Key.Value(src)
}

// holder returns the job that answers for a's unique key, if one does, and
// whether a record of the key exists (to be taken over) when none does.
func holder(tx storage.Tx, j *errand.Job, a admission) (prev *errand.Job, exists bool, err error) {
	id, err := tx.UniqueJob(j.Operation, a.unique)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("unique job: %w", err)
	}
	prev, err = tx.GetJob(id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, true, nil // deleted since: the record is taken over
	}
	if err != nil {
		return nil, false, err
	}
	live := !prev.Status.Terminal() || (prev.FinishedAt != nil && a.now.Before(prev.FinishedAt.Add(a.window)))
	if !live || prev.Tenant != j.Tenant {
		return nil, true, nil
	}
	return prev, true, nil
}

// checkQueue refuses the job when its queue holds max_queued jobs.
func checkQueue(tx storage.Tx, j *errand.Job, a admission) error {
	if a.maxQueued == 0 {
		return nil
	}
	n, err := tx.CountQueued(j.Operation, j.QueueKey, a.maxQueued)
	if err != nil {
		return fmt.Errorf("count queued: %w", err)
	}
	if n >= a.maxQueued {
		return &errQueueFull{err: errand.Errorf(errand.EQUEUEFULL, "queue full"), queued: n, limit: a.maxQueued}
	}
	return nil
}

// queueFull turns a transaction's errQueueFull into the client's answer,
// with a Retry-After from the operation's drain rate; other errors pass.
func (s *Service) queueFull(ctx context.Context, operation string, err error) error {
	var qf *errQueueFull
	if !errors.As(err, &qf) {
		return err
	}
	wait := DefaultQueueFullRetry
	if rate, rerr := s.drain.Rate(ctx, operation); rerr == nil {
		if d, ok := admit.Wait(qf.queued-qf.limit+1, rate); ok {
			wait = max(d, time.Second)
		}
	}
	return &errand.Error{Code: errand.EQUEUEFULL, RetryAfter: wait,
		Message: fmt.Sprintf("operation %q has %d jobs queued, its max_queued: retry in %s", operation, qf.queued, wait.Round(time.Second))}
}

// MaxQueuePosition is the deepest place in a queue Place shows: finding a
// job's place reads an index entry per job ahead of it, which a point read
// must not turn into a scan.
const MaxQueuePosition = 1000

// Place shows a queued job's place in its operation's queue: its position
// (1 is next) and when it may start at the recent drain rate (an estimate,
// nil when nothing drained lately). Other jobs, and jobs with more than
// MaxQueuePosition ahead, are left as they are.
func (s *Service) Place(ctx context.Context, j *errand.Job) error {
	if j.Status != errand.StatusQueued {
		return nil
	}
	ahead, err := s.store.QueueAhead(ctx, j, MaxQueuePosition)
	if err != nil {
		return fmt.Errorf("queue position: %w", err)
	}
	if ahead >= MaxQueuePosition {
		return nil
	}
	pos := ahead + 1
	j.QueuePosition = &pos
	rate, err := s.drain.Rate(ctx, j.Operation)
	if err != nil {
		return fmt.Errorf("drain rate: %w", err)
	}
	if d, ok := admit.Wait(ahead, rate); ok {
		at := s.cfg.Now().UTC().Add(d).Truncate(time.Second)
		j.EstimatedStartAt = &at
	}
	return nil
}

// QueueState is an operation's queue as GET /v1/operations/{name} shows it.
type QueueState struct {
	// Queued is how many jobs wait (status queued).
	Queued int `json:"queued"`
	// DrainRate is how many started per second lately (see admit.Drain).
	DrainRate float64 `json:"drain_rate"`
}

// Queue reads the operation's queue depth and drain rate.
func (s *Service) Queue(ctx context.Context, operation string) (QueueState, error) {
	n, err := s.store.QueueDepth(ctx, operation)
	if err != nil {
		return QueueState{}, fmt.Errorf("queue depth: %w", err)
	}
	rate, err := s.drain.Rate(ctx, operation)
	if err != nil {
		return QueueState{}, fmt.Errorf("drain rate: %w", err)
	}
	return QueueState{Queued: n, DrainRate: rate}, nil
}

// queueDepths spare a submit the count of its queue while the queue is far
// from its max_queued: each operation's depth, read at most once a second,
// plus the jobs this node admitted since. Only within depthMargin of the
// bound does the submit's transaction count (exactly, up to the bound), so
// a bound of 10,000 costs a submit nothing until its queue nears it. The
// margin absorbs what the reading misses: submits in flight while it was
// taken (at most the node's concurrent submits) and, on PostgreSQL, other
// nodes' submits since.
type queueDepths struct {
	mu sync.Mutex
	m  map[string]*depth
}

type depth struct {
	queued int       // at the last reading
	added  int       // jobs this node let by without a count since
	at     time.Time // when read
}

// depthMargin is how near its bound a queue is counted in the transaction.
const depthMargin = 1000

// depthFresh is how long a reading of a queue's depth is used.
const depthFresh = time.Second

// skipCount clears a's bound when the operation's queue (a whole-operation
// bound, not a per-key one) is far below it.
func (q *queueDepths) skipCount(ctx context.Context, r storage.FlowReader, op *errand.Operation, a *admission) {
	if a.maxQueued == 0 || a.maxQueued <= depthMargin || !op.Flow.MaxQueued.Key.IsZero() {
		return
	}
	now := time.Now()
	q.mu.Lock()
	d := q.m[op.Name]
	q.mu.Unlock()
	if d == nil || now.Sub(d.at) > depthFresh {
		n, err := r.QueueDepth(ctx, op.Name)
		if err != nil {
			return // the transaction counts
		}
		d = &depth{queued: n, at: now}
		q.mu.Lock()
		if q.m == nil {
			q.m = map[string]*depth{}
		}
		q.m[op.Name] = d
		q.mu.Unlock()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if d.queued+d.added+depthMargin < a.maxQueued {
		d.added++
		a.maxQueued = 0
	}
}
