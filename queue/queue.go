// Package queue hands jobs to workers: leases with long-poll, heartbeats,
// completion and failure with retries, and the maintenance that keeps the queue
// moving (lease reaper, scheduler, retention cleaner).
package queue

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/artifact"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/schema"
	"github.com/errandhq/errand/storage"
)

// Config tunes the queue. The zero value is ready to use.
type Config struct {
	// DefaultLease is how long a lease lasts when the worker does not say.
	// Defaults to 60 seconds.
	DefaultLease time.Duration
	// MaxLease caps the lease a worker may ask for. Defaults to 1 hour.
	MaxLease time.Duration
	// MaxWait caps how long a lease request long-polls. Defaults to 60 seconds.
	MaxWait time.Duration
	// MaxJobs caps the jobs one lease request may take. Defaults to 1000.
	MaxJobs int
	// MaxLeaseBytes caps the input one lease request takes, in bytes: a lease
	// takes fewer jobs than asked for when their inputs would pass it, always at
	// least one. Defaults to errand.DefaultPageBytes (8 MiB).
	MaxLeaseBytes int64
	// Now is the clock. Defaults to errand.Now.
	Now func() time.Time
	// Artifacts keeps the files jobs produce; nil keeps none.
	Artifacts artifact.Store
	// MaxArtifactBytes caps one artifact. Defaults to 100 MiB.
	MaxArtifactBytes int64
	// LeaseParent is the W3C trace context a lease of a job (just started)
	// hands its worker (errand.Lease.TraceParent). Defaults to the job's own
	// (the submitter's).
	LeaseParent func(j *errand.Job) string
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.DefaultLease = cmp.Or(out.DefaultLease, errand.DefaultLease)
	out.MaxLease = cmp.Or(out.MaxLease, errand.DefaultMaxLease)
	out.MaxWait = cmp.Or(out.MaxWait, errand.DefaultMaxWait)
	out.MaxJobs = cmp.Or(out.MaxJobs, errand.DefaultMaxLeaseJobs)
	out.MaxLeaseBytes = cmp.Or(out.MaxLeaseBytes, errand.DefaultPageBytes)
	out.MaxArtifactBytes = cmp.Or(out.MaxArtifactBytes, errand.DefaultMaxArtifactBytes)
	if out.Now == nil {
		out.Now = errand.Now
	}
	if out.LeaseParent == nil {
		out.LeaseParent = func(j *errand.Job) string { return j.TraceParent }
	}
	return out
}

func (c *Config) validate() error {
	switch {
	case c.DefaultLease < 0 || c.MaxLease < c.DefaultLease:
		return fmt.Errorf("max lease (%s) must not be shorter than the default lease (%s)", c.MaxLease, c.DefaultLease)
	case c.MaxWait < 0 || c.MaxJobs < 1 || c.MaxArtifactBytes < 1:
		return errors.New("max wait must not be negative; max jobs and max artifact bytes must be positive")
	}
	return nil
}

// Queue is the worker side of jobs.
type Queue struct {
	store   storage.Store
	signal  *Signal
	ops     map[string]errand.Operation
	results map[string]*schema.Schema // the operations' result_schema, compiled
	cfg     Config
	scope   Scope
	shares  *fairShares
}

// New returns a queue over the declared operations. It leases and acts on
// every tenant's jobs (AllTenants), as errand's own runners do; a remote
// worker's requests go through For(ScopeOf(principal)).
func New(store storage.Store, signal *Signal, ops []errand.Operation, cfg *Config) (*Queue, error) {
	q := &Queue{store: store, signal: signal, ops: make(map[string]errand.Operation, len(ops)),
		results: map[string]*schema.Schema{}, cfg: cfg.withDefaults(), scope: AllTenants,
		shares: &fairShares{by: map[string]*fairShare{}}}
	if err := q.cfg.validate(); err != nil {
		return nil, fmt.Errorf("queue config: %w", err)
	}
	for _, op := range ops {
		q.ops[op.Name] = op.WithDefaults()
		if len(op.ResultSchema) > 0 {
			s, err := schema.Compile("operations."+op.Name+".result_schema", op.ResultSchema)
			if err != nil {
				return nil, err
			}
			q.results[op.Name] = s
		}
	}
	return q, nil
}

// Scope says whose jobs a caller may lease, and act on through their leases.
// The zero value allows none.
type Scope struct {
	all bool
	p   *errand.Principal
}

// AllTenants leases every tenant's jobs of every operation: errand's own
// runners, in-process.
var AllTenants = Scope{all: true}

// ScopeOf is what a principal may lease: the jobs of its own tenant of the
// operations its workers:lease permissions name, and every tenant's of those
// an operator-level workers:lease:…@* names.
func ScopeOf(p errand.Principal) Scope { return Scope{p: &p} }

// tenant returns whose jobs of operation the scope may lease: one tenant's, or
// "" for every tenant's; ok is false when it may lease none.
func (s Scope) tenant(operation string) (tenant string, ok bool) {
	switch {
	case s.all:
		return "", true
	case s.p == nil:
		return "", false
	case s.p.CanEveryTenant(errand.PermWorkersLease, operation):
		return "", true
	case s.p.Tenant != "" && s.p.Can(errand.PermWorkersLease, operation):
		return s.p.Tenant, true
	}
	return "", false
}

// holds reports whether the scope may hold j's lease.
func (s Scope) holds(j *errand.Job) bool {
	t, ok := s.tenant(j.Operation)
	return ok && (t == "" || t == j.Tenant)
}

// For returns the queue as a caller with scope s sees it: it leases only the
// jobs s may, and a lease of any other job is not held.
func (q *Queue) For(s Scope) *Queue {
	c := *q
	c.scope = s
	return &c
}

// LeaseParams is a worker's request for work.
type LeaseParams struct {
	Operations []string `json:"operations"`
	// MaxJobs is how many jobs to take at most. Defaults to 1.
	MaxJobs int `json:"max_jobs"`
	// WaitSeconds is how long to wait for work when there is none. Defaults to 0.
	WaitSeconds float64 `json:"wait_seconds"`
	// LeaseSeconds is how long the worker holds each job without a heartbeat.
	LeaseSeconds float64 `json:"lease_seconds"`
	Worker       string  `json:"worker"`
	// Completions are the worker's finished jobs, completed in the same commit
	// as the lease (see CompleteAndLease): a worker taking one job a request
	// then makes one request a job, not two.
	Completions []Completion `json:"completions,omitempty"`
}

func (q *Queue) check(lp *LeaseParams) error {
	if len(lp.Operations) == 0 {
		return errand.Errorf(errand.EINVALID, "operations: name at least one operation")
	}
	for _, name := range lp.Operations {
		if _, ok := q.scope.tenant(name); !ok {
			return errand.Deny(errand.PermWorkersLease, name)
		}
	}
	for _, name := range lp.Operations {
		if _, ok := q.ops[name]; !ok {
			return errand.Errorf(errand.EOPNOTFOUND, "operation %q is not declared", name)
		}
	}
	lp.Operations = slices.Compact(slices.Sorted(slices.Values(lp.Operations)))
	lp.MaxJobs = cmp.Or(lp.MaxJobs, 1)
	if lp.MaxJobs < 1 || lp.MaxJobs > q.cfg.MaxJobs {
		return errand.Errorf(errand.EINVALID, "max_jobs must be between 1 and %d", q.cfg.MaxJobs)
	}
	if !validSeconds(lp.WaitSeconds) || !validSeconds(lp.LeaseSeconds) {
		return errand.Errorf(errand.EINVALID, "wait_seconds and lease_seconds must be finite and not negative")
	}
	if len(lp.Worker) > 200 {
		return errand.Errorf(errand.EINVALID, "worker must be at most 200 bytes")
	}
	if len(lp.Completions) > q.cfg.MaxJobs {
		return errand.Errorf(errand.EINVALID, "completions: at most %d", q.cfg.MaxJobs)
	}
	return nil
}

// Lease takes up to MaxJobs queued jobs of the operations, waiting up to
// WaitSeconds for work to arrive. It returns an empty list when none came.
func (q *Queue) Lease(ctx context.Context, lp LeaseParams) ([]errand.Lease, error) {
	_, leases, err := q.CompleteAndLease(ctx, lp)
	return leases, err
}

// CompleteAndLease completes lp.Completions and leases jobs as Lease does,
// the completions and the first claim in one transaction: one commit for a
// worker's finished job and its next. Each completion's outcome is answered
// as CompleteBatch answers it (a lease that expired fails that entry, not the
// request); the completions are kept even when no job is there to lease
// (the wait for one begins after they commit).
func (q *Queue) CompleteAndLease(ctx context.Context, lp LeaseParams) ([]Outcome, []errand.Lease, error) {
	if err := q.check(&lp); err != nil {
		return nil, nil, err
	}
	var outcomes []Outcome
	var before func(storage.Tx) error
	if cs := lp.Completions; len(cs) > 0 {
		outcomes = make([]Outcome, len(cs))
		ids := leasedIDs(cs)
		before = func(tx storage.Tx) error { return q.completeIn(tx, cs, ids, outcomes) }
	}
	leases, err := q.lease(ctx, lp, before)
	if err != nil {
		return nil, nil, err
	}
	return outcomes, leases, nil
}

// lease claims jobs, waiting up to lp.WaitSeconds for some; before, when not
// nil, runs in the transaction of the first claim.
func (q *Queue) lease(ctx context.Context, lp LeaseParams, before func(storage.Tx) error) ([]errand.Lease, error) {
	lease := seconds(lp.LeaseSeconds, q.cfg.DefaultLease, q.cfg.MaxLease)
	wait := seconds(lp.WaitSeconds, 0, q.cfg.MaxWait)
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	wake, stop := q.signal.Watch(lp.Operations)
	defer stop()
	dueTimer := time.NewTimer(time.Hour)
	defer dueTimer.Stop()
	completed := false // before has committed: its answers must reach the worker
	for {
		leases, next, err := q.claim(ctx, lp, lease, before)
		completed = completed || (before != nil && err == nil)
		before = nil
		if err != nil && completed {
			return nil, nil // a later claim failed: no leases, but the completions stand
		}
		if err != nil || len(leases) > 0 || timeout == nil {
			return leases, err
		}
		var due <-chan time.Time
		if !next.IsZero() { // start_rate lets a start happen then
			dueTimer.Reset(max(next.Sub(q.cfg.Now()), time.Millisecond))
			due = dueTimer.C
		}
		select {
		case <-wake:
		case <-due:
		case <-timeout:
			timeout = nil // one last claim, then the answer whatever it finds
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// seconds turns a client's seconds into a duration: def for 0, at most limit.
// It compares before it converts: a float64 of seconds beyond what a Duration
// holds (292 years) would wrap around to a negative one.
func seconds(s float64, def, limit time.Duration) time.Duration {
	switch {
	case s == 0:
		return def
	case !(s < limit.Seconds()): // NaN too
		return limit
	}
	return time.Duration(s * float64(time.Second))
}

// validSeconds reports whether a client's seconds are a number, finite and not
// negative (JSON carries no NaN or infinity; Go callers could).
func validSeconds(s float64) bool { return s >= 0 && s <= math.MaxFloat64 }

// claim leases what is queued now, honouring priority, concurrency limits and
// flow control; next, when not zero, is when start_rate lets a start happen.
func (q *Queue) claim(ctx context.Context, lp LeaseParams, lease time.Duration, before func(storage.Tx) error) ([]errand.Lease, time.Time, error) {
	var out []errand.Lease
	var next time.Time
	var fair []take // what fair claims started, charged once committed
	// A worker waits for it: urgent.
	err := q.store.WithTx(storage.Urgent(ctx), func(tx storage.Tx) error {
		out = out[:0]
		if before != nil {
			if err := before(tx); err != nil {
				return err
			}
		}
		var jobs []*errand.Job
		var cut bool
		var err error
		jobs, cut, next, fair, err = q.candidates(tx, lp)
		if err != nil {
			return err
		}
		if cut {
			// Queued jobs are left (on PostgreSQL some were locked by this
			// transaction, so other workers skipped them): wake them after commit.
			for _, op := range lp.Operations {
				tx.JobsReady(op)
			}
		}
		now := q.cfg.Now().UTC()
		for _, j := range jobs {
			if err := q.start(tx, j, lp.Worker, lease, now); err != nil {
				return err
			}
			out = append(out, errand.Lease{ID: j.LeaseID(), ExpiresAt: *j.LeaseExpiresAt, TraceParent: q.cfg.LeaseParent(j), Job: j})
		}
		return nil
	})
	if err == nil {
		for _, t := range fair {
			t.fair.charge(t.started)
		}
	}
	return out, next, err
}

// candidates picks the jobs to lease: the best of each operation, within its
// concurrency limit, merged by priority, run_at and id, as many as MaxJobs and
// MaxLeaseBytes allow. cut reports that the byte budget ran out (queued jobs
// may be left). When it does, operations earlier by name fill it first: each
// operation's read gets what the ones before left of it.
func (q *Queue) candidates(tx storage.Tx, lp LeaseParams) (jobs []*errand.Job, cut bool, next time.Time, fair []take, err error) {
	var all []*errand.Job
	budget, used := q.cfg.MaxLeaseBytes, int64(0)
	now := q.cfg.Now().UTC()
	for _, name := range lp.Operations {
		if used >= budget {
			break
		}
		limit := lp.MaxJobs
		if c := q.ops[name].Concurrency; c > 0 {
			running, err := tx.CountRunning(name)
			if err != nil {
				return nil, false, time.Time{}, nil, fmt.Errorf("count running %s: %w", name, err)
			}
			limit = min(limit, c-running)
		}
		if limit <= 0 {
			continue
		}
		t, err := q.claimOperation(tx, name, limit, budget-used, now)
		if err != nil {
			return nil, false, time.Time{}, nil, err
		}
		if t.fair != nil {
			fair = append(fair, t)
		}
		for _, j := range t.jobs {
			used += j.Bytes()
		}
		all = append(all, t.jobs...)
		cut = cut || t.left
		if !t.next.IsZero() && (next.IsZero() || t.next.Before(next)) {
			next = t.next
		}
	}
	if len(lp.Operations) > 1 {
		slices.SortFunc(all, func(a, b *errand.Job) int {
			return cmp.Or(cmp.Compare(b.Priority, a.Priority), a.RunAt.Compare(b.RunAt), strings.Compare(a.ID, b.ID))
		})
	}
	n, bytes := 0, int64(0)
	for n < len(all) && n < lp.MaxJobs && bytes < budget {
		bytes += all[n].Bytes()
		n++
	}
	return all[:n], cut || used >= budget, next, fair, nil
}

func (q *Queue) start(tx storage.Tx, j *errand.Job, worker string, lease time.Duration, now time.Time) error {
	return job.Record(tx, j, job.Start(j, worker, newToken(), lease, now), now)
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// parseLease splits a lease id into its job id and token.
func parseLease(id string) (jobID, token string, err error) {
	rest, ok := strings.CutPrefix(id, errand.LeasePrefix)
	if ok {
		jobID, token, ok = strings.Cut(rest, ".")
	}
	if !ok || !errand.ValidID("job", jobID) || len(token) != 32 {
		return "", "", errand.Errorf(errand.ELEASEEXPIRED, "lease %q is not held", errand.Truncate(errand.RedactLeases(id), 80))
	}
	return jobID, token, nil
}

// held loads the job of a lease and checks that the lease is still held at now
// by someone in scope. Messages name the lease without its token: they reach
// logs and the audit log.
func held(tx storage.Tx, scope Scope, leaseID string, now time.Time) (*errand.Job, error) {
	jobID, token, err := parseLease(leaseID)
	if err != nil {
		return nil, err
	}
	name := errand.RedactLeases(leaseID)
	j, err := tx.GetJob(jobID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errand.Errorf(errand.ELEASEEXPIRED, "lease %s is not held: the job is gone", name)
	}
	if err != nil {
		return nil, err
	}
	notHeld := fmt.Sprintf("lease %s is not held: it was completed, failed or taken over", name)
	if !scope.holds(j) {
		// Another tenant's job, or an operation the caller may not lease: answered
		// as a lease not held, whatever the token, and recorded as a denial.
		return nil, errand.Hidden(errand.ELEASEEXPIRED, notHeld, errand.PermWorkersLease, name)
	}
	if j.Status != errand.StatusRunning || subtle.ConstantTimeCompare([]byte(j.LeaseToken), []byte(token)) != 1 {
		return nil, errand.Errorf(errand.ELEASEEXPIRED, "%s", notHeld)
	}
	if !now.Before(*j.LeaseExpiresAt) {
		return nil, errand.Errorf(errand.ELEASEEXPIRED, "lease %s expired at %s", name, j.LeaseExpiresAt.Format(time.RFC3339Nano))
	}
	return j, nil
}

// onLease runs fn on the job of a held lease in one transaction and returns the job.
func (q *Queue) onLease(ctx context.Context, leaseID string, fn func(tx storage.Tx, j *errand.Job, now time.Time) error) (*errand.Job, error) {
	var out *errand.Job
	err := q.store.WithTx(storage.Urgent(ctx), func(tx storage.Tx) error { // a worker waits
		now := q.cfg.Now().UTC()
		j, err := held(tx, q.scope, leaseID, now)
		if err != nil {
			return err
		}
		out = j
		if err := fn(tx, j, now); err != nil {
			return err
		}
		q.freed(tx, j)
		return nil
	})
	return out, err
}

// HeartbeatParams extends a lease and reports progress.
type HeartbeatParams struct {
	Progress *errand.Progress `json:"progress"`
	// ExtendSeconds is how long from now the lease should last. Defaults to the
	// queue's DefaultLease.
	ExtendSeconds float64 `json:"extend_seconds"`
}

// HeartbeatResult tells the worker how long it holds the job and whether to stop.
type HeartbeatResult struct {
	ExpiresAt       time.Time `json:"expires_at"`
	CancelRequested bool      `json:"cancel_requested"`
}

// Heartbeat extends a lease (never past the attempt's timeout) and records progress.
func (q *Queue) Heartbeat(ctx context.Context, leaseID string, hp HeartbeatParams) (HeartbeatResult, error) {
	if !validSeconds(hp.ExtendSeconds) {
		return HeartbeatResult{}, errand.Errorf(errand.EINVALID, "extend_seconds must be finite and not negative")
	}
	if p := hp.Progress; p != nil && (p.Percent < 0 || p.Percent > 100 || len(p.Message) > 1000) {
		return HeartbeatResult{}, errand.Errorf(errand.EINVALID, "progress: percent must be 0 to 100 and message at most 1000 bytes")
	}
	var res HeartbeatResult
	_, err := q.onLease(ctx, leaseID, func(tx storage.Tx, j *errand.Job, now time.Time) error {
		st := job.Heartbeat(j, seconds(hp.ExtendSeconds, q.cfg.DefaultLease, q.cfg.MaxLease), hp.Progress, now)
		res = HeartbeatResult{ExpiresAt: *j.LeaseExpiresAt, CancelRequested: j.CancelRequested}
		return job.Record(tx, j, st, now)
	})
	return res, err
}

// Complete finishes a leased job successfully with result. A result that does
// not match the operation's result_schema ends the attempt as failed instead
// (see succeed); the error says so, with the job as it now is.
func (q *Queue) Complete(ctx context.Context, leaseID string, result json.RawMessage) (*errand.Job, error) {
	var refused error
	j, err := q.onLease(ctx, leaseID, func(tx storage.Tx, j *errand.Job, now time.Time) error {
		var err error
		refused, err = q.succeed(tx, j, result, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return j, refused
}

// succeed records the end of a held job's attempt with result: the job
// succeeds, or, when the result does not match the operation's result_schema,
// the attempt fails with result_invalid like any failed attempt (retried after
// the operation's backoff while attempts are left, else failed). No client
// ever sees such a result. The refusal comes back as refused, to answer the
// worker with, while err fails the transaction.
func (q *Queue) succeed(tx storage.Tx, j *errand.Job, result json.RawMessage, now time.Time) (refused, err error) {
	if bad := q.checkResult(j, result); bad != nil {
		p := &errand.Problem{Code: bad.Code, Title: "The result does not match the operation's result_schema",
			Detail: bad.Message, Errors: bad.Fields}
		return bad, q.endAttempt(tx, j, p, true, nil, now)
	}
	return nil, job.Record(tx, j, job.Succeed(j, q.operation(j), result, now), now)
}

// checkResult validates a result against its operation's result_schema (an
// absent result is null).
func (q *Queue) checkResult(j *errand.Job, result json.RawMessage) *errand.Error {
	s := q.results[j.Operation]
	if s == nil {
		return nil
	}
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	var e *errand.Error
	if errors.As(s.CheckWithheld(result, errand.ERESULTINVALID, "the result does not match the result_schema of operation "+
		j.Operation+"; the attempt failed (retried while attempts are left)"), &e) {
		return e
	}
	return nil
}

// Completion is one entry of a batch completion.
type Completion struct {
	LeaseID string          `json:"lease_id"`
	Result  json.RawMessage `json:"result,omitempty"` // null when left out
}

// Outcome is what became of one entry of a batch: the job, or the error.
type Outcome struct {
	Job *errand.Job
	Err error
}

// CompleteBatch completes many leases in one transaction; each succeeds or fails
// on its own.
func (q *Queue) CompleteBatch(ctx context.Context, cs []Completion) ([]Outcome, error) {
	if len(cs) == 0 || len(cs) > q.cfg.MaxJobs {
		return nil, errand.Errorf(errand.EINVALID, "a batch holds 1 to %d completions", q.cfg.MaxJobs)
	}
	out := make([]Outcome, len(cs))
	ids := leasedIDs(cs)
	err := q.store.WithTx(storage.Urgent(ctx), func(tx storage.Tx) error { // a worker waits
		return q.completeIn(tx, cs, ids, out)
	})
	return out, err
}

// leasedIDs are the job ids the completions' lease ids name.
func leasedIDs(cs []Completion) []string {
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		if id, _, err := parseLease(c.LeaseID); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// completeIn completes cs in tx, each entry's outcome into out; only an
// internal error fails the transaction.
func (q *Queue) completeIn(tx storage.Tx, cs []Completion, ids []string, out []Outcome) error {
	if err := tx.LockJobs(ids); err != nil {
		return err
	}
	now := q.cfg.Now().UTC()
	for i, c := range cs {
		j, err := held(tx, q.scope, c.LeaseID, now)
		var refused error
		if err == nil {
			if refused, err = q.succeed(tx, j, c.Result, now); err == nil {
				q.freed(tx, j)
			}
		}
		out[i] = Outcome{Job: j, Err: cmp.Or(err, refused)}
		if errand.ErrorCode(err) == errand.EINTERNAL {
			return err
		}
	}
	return nil
}

// FailParams says why an attempt failed and whether to try again.
type FailParams struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error" nul:"allow"` // stored in the job's error document, not as text
	// Retry asks for another attempt (if any are left). Defaults to true.
	Retry *bool `json:"retry"`
	// RetryAfterSeconds overrides the backoff before the next attempt.
	RetryAfterSeconds *float64 `json:"retry_after_seconds"`
}

// Fail ends a leased attempt with an error: the job is retried after a backoff
// while attempts are left and the worker asked for it, else it fails. A job whose
// cancel was requested is canceled.
func (q *Queue) Fail(ctx context.Context, leaseID string, fp FailParams) (*errand.Job, error) {
	if len(fp.Error.Code) > 100 || len(fp.Error.Message) > 10_000 {
		return nil, errand.Errorf(errand.EINVALID, "error.code must be at most 100 bytes and error.message 10000")
	}
	if r := fp.RetryAfterSeconds; r != nil && !(*r >= 0 && *r <= job.MaxDelay) { // NaN too
		return nil, errand.Errorf(errand.EINVALID, "retry_after_seconds must be between 0 and %d", job.MaxDelay)
	}
	return q.onLease(ctx, leaseID, func(tx storage.Tx, j *errand.Job, now time.Time) error {
		p := &errand.Problem{Code: cmp.Or(fp.Error.Code, "worker_error"), Title: "The worker reported an error", Detail: fp.Error.Message}
		var delay *time.Duration
		if fp.RetryAfterSeconds != nil {
			d := time.Duration(*fp.RetryAfterSeconds * float64(time.Second))
			delay = &d
		}
		return q.endAttempt(tx, j, p, fp.Retry == nil || *fp.Retry, delay, now)
	})
}

// endAttempt records a failed attempt: canceled if a cancel was asked for,
// retried after delay (the operation's backoff when nil) while attempts are
// left, else failed.
func (q *Queue) endAttempt(tx storage.Tx, j *errand.Job, p *errand.Problem, retry bool, delay *time.Duration, now time.Time) error {
	op := q.operation(j)
	d := job.Backoff(op.Retry, j.Attempt)
	if delay != nil {
		d = *delay
	}
	return job.Record(tx, j, job.Fail(j, op, p, retry, d, now), now)
}

// expire records the end of an attempt whose lease ran out or whose timeout passed.
func (q *Queue) expire(tx storage.Tx, j *errand.Job, now time.Time) error {
	op := q.operation(j)
	if err := job.Record(tx, j, job.Expire(j, op, job.Backoff(op.Retry, j.Attempt), now), now); err != nil {
		return err
	}
	q.freed(tx, j)
	return nil
}

// operation is the declared operation of a stored job (the defaults for one
// no longer declared).
func (q *Queue) operation(j *errand.Job) errand.Operation {
	if op, ok := q.ops[j.Operation]; ok {
		return op
	}
	return errand.Operation{Name: j.Operation}.WithDefaults()
}

// Release gives a leased job back without counting the attempt: a worker that
// stops before it could finish the job. The job is queued again at once.
func (q *Queue) Release(ctx context.Context, leaseID string) (*errand.Job, error) {
	return q.onLease(ctx, leaseID, func(tx storage.Tx, j *errand.Job, now time.Time) error {
		return job.Record(tx, j, job.Release(j, q.operation(j), now), now)
	})
}
