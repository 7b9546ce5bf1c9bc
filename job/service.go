// Package job is the jobs service: submit, read, wait for, list, cancel, retry and
// delete jobs, with idempotency and input validation. Every state change commits
// with its event in one transaction.
package job

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/admit"
	"github.com/errandhq/errand/artifact"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/jsonguard"
	"github.com/errandhq/errand/schema"
	"github.com/errandhq/errand/storage"
)

// Config tunes the service. The zero value is ready to use.
type Config struct {
	// MaxWait caps how long a request may wait for a job to finish
	// (Prefer: wait=N). Defaults to 60 seconds.
	MaxWait time.Duration
	// Now is the clock. Defaults to errand.Now.
	Now func() time.Time
	// Artifacts keeps the files jobs produce; nil keeps none.
	Artifacts artifact.Store
	// CheckCallback checks a callback_url before its job is accepted (the
	// webhook service's SSRF guard). Nil refuses every callback_url: nothing
	// would deliver it.
	CheckCallback func(ctx context.Context, url string) error
	// PageBytes bounds the input and result of one List page and the event
	// data of one Events page, in bytes: a page holds fewer items when it
	// runs out (at least one). Defaults to errand.DefaultPageBytes.
	PageBytes int64
	// ListTimeout bounds one List: a list that takes longer (waiting for a
	// connection included) is answered 503 with Retry-After rather than
	// holding a connection any longer. Defaults to 5 seconds.
	ListTimeout time.Duration
	// TraceParent is the W3C trace context of a submit's context (its
	// request's span), kept with the job so that every later step continues
	// the submitter's trace. Nil keeps none.
	TraceParent func(ctx context.Context) string
	// Limiter takes operations' rate limits. Nil: one over the store.
	Limiter *admit.Limiter
	// Drain measures operations' drain rates (queue_full's Retry-After,
	// queued jobs' estimated start). Nil: one over the store.
	Drain *admit.Drain
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.MaxWait = cmp.Or(out.MaxWait, errand.DefaultMaxWait)
	out.PageBytes = cmp.Or(out.PageBytes, errand.DefaultPageBytes)
	out.ListTimeout = cmp.Or(out.ListTimeout, errand.DefaultListTimeout)
	if out.Now == nil {
		out.Now = errand.Now
	}
	return out
}

// Service runs the jobs API.
type Service struct {
	store   storage.Store
	hub     *event.Hub
	ops     map[string]*entry
	names   []string
	cfg     Config
	ids     errand.IDGenerator
	limiter *admit.Limiter
	drain   *admit.Drain
	depths  queueDepths
}

// entry is a declared operation with its compiled input schema.
type entry struct {
	op     errand.Operation
	schema *schema.Schema
}

// NewService returns the jobs service for the declared operations.
func NewService(store storage.Store, hub *event.Hub, ops []errand.Operation, cfg *Config) (*Service, error) {
	s := &Service{store: store, hub: hub, ops: make(map[string]*entry, len(ops)), cfg: cfg.withDefaults()}
	if s.cfg.MaxWait < 0 {
		return nil, errors.New("job service config: max wait must not be negative")
	}
	s.limiter, s.drain = s.cfg.Limiter, s.cfg.Drain
	if s.limiter == nil {
		s.limiter = admit.NewLimiter(store, &admit.LimiterConfig{Now: s.cfg.Now})
	}
	if s.drain == nil {
		s.drain = admit.NewDrain(store, s.cfg.Now)
	}
	for _, op := range ops {
		op = op.WithDefaults()
		e := &entry{op: op}
		if len(op.InputSchema) > 0 {
			sc, err := schema.Compile("operation "+op.Name, op.InputSchema)
			if err != nil {
				return nil, err
			}
			e.schema = sc
		}
		s.ops[op.Name] = e
		s.names = append(s.names, op.Name)
	}
	slices.Sort(s.names)
	return s, nil
}

// Operations returns the declared operations, sorted by name.
func (s *Service) Operations() []errand.Operation {
	out := make([]errand.Operation, 0, len(s.names))
	for _, n := range s.names {
		out = append(out, s.ops[n].op)
	}
	return out
}

// Operation returns the declared operation called name.
func (s *Service) Operation(name string) (errand.Operation, error) {
	e, ok := s.ops[name]
	if !ok {
		return errand.Operation{}, errand.Errorf(errand.EOPNOTFOUND, "operation %q is not declared", name)
	}
	return e.op, nil
}

// Visible returns the declared operations p may know of (those it may
// submit or lease), sorted by name.
func (s *Service) Visible(p errand.Principal) []errand.Operation {
	var out []errand.Operation
	for _, n := range s.names {
		if sees(&p, n) {
			out = append(out, s.ops[n].op)
		}
	}
	return out
}

// Describe returns the declared operation called name if p may know of it;
// one it may not is not found, as one that is not declared (a denial in the
// audit log).
func (s *Service) Describe(p errand.Principal, name string) (errand.Operation, error) {
	op, err := s.Operation(name)
	if err == nil && !sees(&p, name) {
		return errand.Operation{}, errand.Hidden(errand.EOPNOTFOUND, fmt.Sprintf("operation %q is not declared", errand.Truncate(name, 64)),
			errand.PermJobsSubmit, name)
	}
	return op, err
}

// sees reports whether p may know of an operation: it may submit its jobs or
// lease them.
func sees(p *errand.Principal, name string) bool {
	return p.Can(errand.PermJobsSubmit, name) || p.Can(errand.PermWorkersLease, name)
}

// SubmitParams is a request to run an operation.
type SubmitParams struct {
	Operation string            `json:"operation"`
	Input     json.RawMessage   `json:"input,omitempty"`
	RunAt     *time.Time        `json:"run_at,omitempty"`
	Delay     *int              `json:"delay_seconds,omitempty"`
	Priority  *int              `json:"priority,omitempty"`
	Attempts  *int              `json:"max_attempts,omitempty"`
	Timeout   *int              `json:"timeout_seconds,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Callback  string            `json:"callback_url,omitempty"`
	// IdempotencyKey, when set, makes a repeat of the same request return the first job.
	IdempotencyKey string `json:"-"`
	// InTx, when set, runs in the submit's transaction just before the job is
	// stored, given the job: what it writes commits with the job (a broker
	// bridge records the message and the reply it owes). Returning ErrSkip
	// stores nothing (ErrSkip is then the submit's answer); another error
	// fails the submit (in SubmitMany, the whole batch). It may run more than
	// once (see storage.Store.WithTx).
	InTx func(tx storage.Tx, j *errand.Job) error `json:"-"`
	// Header returns a header of the request that submitted (for flow keys
	// header:Name); nil when the submit came in another way (a bridge).
	Header func(name string) string `json:"-"`
}

// ErrSkip, returned by a submit's InTx, stores nothing for that submit.
var ErrSkip = errors.New("job: submit skipped")

// Limits on what a submit may ask for.
const (
	MaxPriority      = 1000
	MaxAttempts      = 1000
	MaxTimeout       = 7 * 24 * 3600 // seconds
	MaxDelay         = 366 * 24 * 3600
	MaxMetadataKeys  = 50
	MaxMetadataKey   = 40
	MaxMetadataValue = 500
	MaxIdempotency   = 255
)

// Submit creates a job. replayed is true when an earlier job is returned
// instead: the one made with the same idempotency key and the same request,
// or the one holding the submit's unique key (SubmitJob tells them apart).
func (s *Service) Submit(ctx context.Context, p errand.Principal, sp SubmitParams) (*errand.Job, bool, error) {
	sub, err := s.SubmitJob(ctx, p, sp)
	return sub.Job, sub.Outcome != Created, err
}

// SubmitJob creates a job, after the operation's admission: its rate limit
// (rate_limited), its unique key (the job holding it answers: Duplicate) and
// its max_queued (queue_full).
func (s *Service) SubmitJob(ctx context.Context, p errand.Principal, sp SubmitParams) (Submitted, error) {
	j, err := s.prepare(ctx, p, sp)
	if err != nil {
		return Submitted{}, err
	}
	op := &s.ops[sp.Operation].op
	src := keySource(&p, j, &sp)
	if err := s.takeRate(ctx, op, rateKey(op, src), 1); err != nil {
		return Submitted{}, err
	}
	a := admissionOf(op, src, j)
	s.depths.skipCount(ctx, s.store, op, &a)
	var out Submitted
	err = s.store.WithTx(ctx, func(tx storage.Tx) error {
		var err error
		out, err = store(tx, j, p.LegacyOwner(), sp.InTx, a)
		return err
	})
	if err != nil {
		return Submitted{}, s.queueFull(ctx, j.Operation, err)
	}
	return out, nil
}

// prepare checks one submit and makes its job (not yet stored).
func (s *Service) prepare(ctx context.Context, p errand.Principal, sp SubmitParams) (*errand.Job, error) {
	e, ok := s.ops[sp.Operation]
	if !ok {
		return nil, errand.Errorf(errand.EOPNOTFOUND, "operation %q is not declared", sp.Operation)
	}
	if !p.Can(errand.PermJobsSubmit, sp.Operation) {
		return nil, errand.Deny(errand.PermJobsSubmit, sp.Operation)
	}
	if len(sp.Input) == 0 {
		sp.Input = json.RawMessage("{}")
	}
	if err := s.check(ctx, e, &sp); err != nil {
		return nil, err
	}
	j := s.newJob(e.op, p, &sp)
	if s.cfg.TraceParent != nil {
		j.TraceParent = s.cfg.TraceParent(ctx)
	}
	return j, nil
}

// store inserts j with its job.created event, or returns the job an earlier
// submit of the same owner with the same idempotency key made (replayed); a
// submit stored before migration 0008 is found under the owner's legacy form.
func store(tx storage.Tx, j *errand.Job, legacy string, inTx func(storage.Tx, *errand.Job) error, a admission) (Submitted, error) {
	if inTx != nil {
		if err := inTx(tx, j); err != nil {
			return Submitted{}, err
		}
	}
	if j.IdempotencyKey != "" {
		prev, err := tx.JobByIdempotencyKey(j.Tenant, j.Owner, j.IdempotencyKey)
		if errors.Is(err, storage.ErrNotFound) && legacy != "" {
			prev, err = tx.JobByIdempotencyKey(j.Tenant, legacy, j.IdempotencyKey)
		}
		if err == nil {
			if prev.RequestHash != j.RequestHash {
				return Submitted{}, errand.Errorf(errand.EIDEMPOTENCY, "idempotency key %q was used with a different request", j.IdempotencyKey)
			}
			return Submitted{prev, Replayed}, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return Submitted{}, err
		}
	}
	held := false
	if a.unique != "" {
		prev, exists, err := holder(tx, j, a)
		if err != nil || prev != nil {
			return Submitted{prev, Duplicate}, err
		}
		held = exists
	}
	if err := checkQueue(tx, j, a); err != nil {
		return Submitted{}, err
	}
	st := Create(j, j.CreatedAt)
	if err := tx.InsertJob(j); err != nil {
		return Submitted{}, err
	}
	if a.unique != "" {
		if err := tx.PutUniqueJob(j.Operation, a.unique, j.ID, held); err != nil {
			return Submitted{}, err
		}
	}
	return Submitted{j, Created}, Append(tx, j, st.Event, st.Data, j.CreatedAt)
}

// MaxBatch is the most jobs one SubmitMany takes.
const MaxBatch = 1000

// SubmitMany creates many jobs in one transaction (one commit for all). Each is
// checked on its own: the answer holds, per submit, its job or its error; only
// a failure of the store fails them all.
func (s *Service) SubmitMany(ctx context.Context, p errand.Principal, sps []SubmitParams) ([]*errand.Job, []error, error) {
	if len(sps) == 0 || len(sps) > MaxBatch {
		return nil, nil, errand.Errorf(errand.EINVALID, "a batch holds 1 to %d jobs", MaxBatch)
	}
	jobs, errs := make([]*errand.Job, len(sps)), make([]error, len(sps))
	for i, sp := range sps {
		jobs[i], errs[i] = s.prepare(ctx, p, sp)
	}
	adms, err := s.admitBatch(ctx, p, sps, jobs, errs)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*errand.Job, len(sps))
	err = s.store.WithTx(ctx, func(tx storage.Tx) error {
		for i, j := range jobs {
			out[i] = nil
			if j == nil {
				continue
			}
			sub, err := store(tx, j, p.LegacyOwner(), sps[i].InTx, adms[i])
			if errand.ErrorCode(err) == errand.EINTERNAL && !errors.Is(err, ErrSkip) {
				return err
			}
			out[i], errs[i] = sub.Job, err
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i, e := range errs {
		errs[i] = s.queueFull(ctx, sps[i].Operation, e)
	}
	return out, errs, nil
}

// admitBatch takes the batch's rate limits, each job counting (the jobs of
// one operation and key value take their tokens at once: all or none), and
// returns each job's admission. A job refused is dropped (jobs[i] = nil)
// with its error in errs.
func (s *Service) admitBatch(ctx context.Context, p errand.Principal, sps []SubmitParams, jobs []*errand.Job, errs []error) ([]admission, error) {
	type group struct {
		op    *errand.Operation
		value string
		idx   []int
	}
	var groups []*group
	byKey := map[string]*group{}
	adms := make([]admission, len(jobs))
	for i, j := range jobs {
		if j == nil {
			continue
		}
		op := &s.ops[j.Operation].op
		src := keySource(&p, j, &sps[i])
		adms[i] = admissionOf(op, src, j)
		s.depths.skipCount(ctx, s.store, op, &adms[i])
		if op.Flow.RateLimit == nil {
			continue
		}
		v := rateKey(op, src)
		g := byKey[op.Name+"\x00"+v]
		if g == nil {
			g = &group{op: op, value: v}
			byKey[op.Name+"\x00"+v] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
	}
	for _, g := range groups {
		err := s.takeRate(ctx, g.op, g.value, len(g.idx))
		if errand.ErrorCode(err) == errand.EINTERNAL {
			return nil, err
		}
		for _, i := range g.idx {
			if err != nil {
				jobs[i], errs[i] = nil, err
			}
		}
	}
	return adms, nil
}

// check validates sp against the limits and the operation's schema.
func (s *Service) check(ctx context.Context, e *entry, sp *SubmitParams) error {
	var fields []errand.FieldError
	bad := func(ptr, msg string) { fields = append(fields, errand.FieldError{Pointer: ptr, Message: msg}) }
	if sp.RunAt != nil && sp.Delay != nil {
		bad("/delay_seconds", "give run_at or delay_seconds, not both")
	}
	if sp.Delay != nil && (*sp.Delay < 0 || *sp.Delay > MaxDelay) {
		bad("/delay_seconds", fmt.Sprintf("must be between 0 and %d", MaxDelay))
	}
	if sp.Priority != nil && (*sp.Priority < -MaxPriority || *sp.Priority > MaxPriority) {
		bad("/priority", fmt.Sprintf("must be between %d and %d", -MaxPriority, MaxPriority))
	}
	if sp.Attempts != nil && (*sp.Attempts < 1 || *sp.Attempts > MaxAttempts) {
		bad("/max_attempts", fmt.Sprintf("must be between 1 and %d", MaxAttempts))
	}
	if sp.Timeout != nil && (*sp.Timeout < 1 || *sp.Timeout > MaxTimeout) {
		bad("/timeout_seconds", fmt.Sprintf("must be between 1 and %d", MaxTimeout))
	}
	if sp.Callback != "" {
		if s.cfg.CheckCallback == nil {
			bad("/callback_url", "this errand delivers no callbacks; subscribe to the job's events instead")
		} else if err := s.cfg.CheckCallback(ctx, sp.Callback); err != nil {
			var ee *errand.Error
			if !errors.As(err, &ee) || len(ee.Fields) == 0 {
				return err
			}
			fields = append(fields, ee.Fields...)
		}
	}
	if len(sp.IdempotencyKey) > MaxIdempotency {
		return errand.Errorf(errand.EINVALID, "Idempotency-Key is longer than %d bytes", MaxIdempotency)
	}
	if !plainText(sp.IdempotencyKey) { // a header may carry any byte but NUL; the key is stored as text
		return errand.Errorf(errand.EVALIDATION, "Idempotency-Key must be UTF-8 text without control characters")
	}
	fields = append(fields, checkMetadata(sp.Metadata)...)
	if len(fields) > 0 {
		return &errand.Error{Code: errand.EVALIDATION, Message: "the request has invalid fields", Fields: fields}
	}
	if e.schema != nil {
		return e.schema.Validate(sp.Input)
	}
	if err := jsonguard.Check(sp.Input, nil); err != nil {
		return err // the HTTP body was checked whole; this is for callers in the process
	}
	return nil
}

// plainText reports whether s is UTF-8 without control characters.
func plainText(s string) bool {
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == utf8.RuneError {
			return false
		}
	}
	return true
}

func checkMetadata(m map[string]string) []errand.FieldError {
	var fields []errand.FieldError
	if len(m) > MaxMetadataKeys {
		return []errand.FieldError{{Pointer: "/metadata", Message: fmt.Sprintf("at most %d keys", MaxMetadataKeys)}}
	}
	for k, v := range m {
		if k == "" || len(k) > MaxMetadataKey {
			fields = append(fields, errand.FieldError{Pointer: "/metadata", Message: fmt.Sprintf("keys must be 1 to %d bytes", MaxMetadataKey)})
		}
		if len(v) > MaxMetadataValue {
			fields = append(fields, errand.FieldError{Pointer: "/metadata/" + k, Message: fmt.Sprintf("at most %d bytes", MaxMetadataValue)})
		}
	}
	return fields
}

func (s *Service) newJob(op errand.Operation, p errand.Principal, sp *SubmitParams) *errand.Job {
	now := s.cfg.Now().UTC()
	runAt := now
	if sp.RunAt != nil {
		runAt = sp.RunAt.UTC()
	} else if sp.Delay != nil {
		runAt = now.Add(time.Duration(*sp.Delay) * time.Second)
	}
	j := &errand.Job{
		ID: s.ids.New("job", now), Operation: op.Name, Input: sp.Input,
		MaxAttempts: op.Retry.MaxAttempts, TimeoutSeconds: int(op.Timeout / time.Second),
		Metadata: sp.Metadata, CallbackURL: sp.Callback, CreatedAt: now, RunAt: runAt, Tenant: p.Tenant, Owner: p.ID,
		IdempotencyKey: sp.IdempotencyKey,
	}
	Create(j, now) // its status, until store records the step
	if sp.Priority != nil {
		j.Priority = *sp.Priority
	}
	if sp.Attempts != nil {
		j.MaxAttempts = *sp.Attempts
	}
	if sp.Timeout != nil {
		j.TimeoutSeconds = *sp.Timeout
	}
	if sp.IdempotencyKey != "" {
		j.RequestHash = requestHash(sp)
	}
	flowKeys(j, op.Flow, errand.KeySource{Principal: &p, Input: sp.Input, Header: sp.Header})
	return j
}

// flowKeys sets the job's concurrency and fair keys from what submitted it.
func flowKeys(j *errand.Job, f errand.Flow, src errand.KeySource) {
	if ck := f.ConcurrencyKey; ck != nil {
		j.ConcurrencyKey = errand.StoredKey(ck.Key.Value(src))
	}
	if fr := f.Fairness; fr != nil {
		j.FairKey = errand.StoredKey(fr.Key.Value(src))
	}
}

// requestHash fingerprints what a submit asked for, ignoring JSON white space.
func requestHash(sp *SubmitParams) string {
	b, _ := json.Marshal(sp) // Input is RawMessage: compacted by Marshal
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Get returns a job the principal may see. A job of another tenant, or one the
// principal may not read, is not found (the audit log records the denial).
func (s *Service) Get(ctx context.Context, p errand.Principal, id string) (*errand.Job, error) {
	j, err := storage.Get(ctx, s.store, p.Tenant, id)
	if errand.ErrorCode(err) == errand.EJOBNOTFOUND {
		return nil, s.notFound(ctx, p, errand.PermJobsRead, id)
	}
	if err == nil && !p.CanOnJob(errand.PermJobsRead, j) {
		return nil, hidden(errand.PermJobsRead, id)
	}
	return j, err
}

// notFound is the answer for a job id the principal's tenant does not hold:
// marked as a denial when the job exists in another tenant.
func (s *Service) notFound(ctx context.Context, p errand.Principal, action, id string) error {
	if tenant, _, err := s.store.JobOwner(ctx, id); err == nil && tenant != p.Tenant {
		return hidden(action, id)
	}
	return errand.Errorf(errand.EJOBNOTFOUND, "job %q does not exist", errand.Truncate(id, 64))
}

func hidden(action, id string) error {
	return errand.Hidden(errand.EJOBNOTFOUND, fmt.Sprintf("job %q does not exist", errand.Truncate(id, 64)), action, id)
}

// Wait returns the job once it has finished or after d, whichever is first.
// d is capped by Config.MaxWait.
func (s *Service) Wait(ctx context.Context, p errand.Principal, id string, d time.Duration) (*errand.Job, error) {
	d = min(d, s.cfg.MaxWait)
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		// Subscribe before reading, so a finish between the two is not missed.
		sub := s.hub.Subscribe(id, 64, errand.DefaultStreamBufferBytes)
		j, err := s.Get(ctx, p, id)
		if err != nil || j.Status.Terminal() || d <= 0 {
			sub.Close()
			return j, err
		}
		done, err := waitTerminal(ctx, sub, deadline.C)
		sub.Close()
		if err != nil || done {
			return s.Get(context.WithoutCancel(ctx), p, id)
		}
		// The subscription fell behind: read the job again.
	}
}

// waitTerminal reports true once a terminal event arrives or the deadline passes,
// false if the subscription was cut off.
func waitTerminal(ctx context.Context, sub *event.Subscription, deadline <-chan time.Time) (bool, error) {
	for {
		select {
		case d, ok := <-sub.C():
			if !ok {
				return false, nil
			}
			sub.Received(d)
			if errand.TerminalEvent(d.Type) {
				return true, nil
			}
		case <-deadline:
			return true, nil
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
}

// ListParams selects jobs for List.
type ListParams struct {
	Operation string
	Status    errand.Status
	Limit     int    // 1 to 1000; defaults to 50
	Cursor    string // from a previous page
}

// List returns a page of jobs the principal may see, newest first, and the cursor
// of the next page ("" on the last). A page holds up to lp.Limit jobs, fewer
// when their input and result pass Config.PageBytes.
func (s *Service) List(ctx context.Context, p errand.Principal, lp ListParams) ([]*errand.Job, string, error) {
	if lp.Limit == 0 {
		lp.Limit = 50
	}
	if lp.Limit < 1 || lp.Limit > 1000 {
		return nil, "", errand.Errorf(errand.EINVALID, "limit must be between 1 and 1000")
	}
	if lp.Status != "" && !lp.Status.Valid() {
		return nil, "", errand.Errorf(errand.EINVALID, "status %q is not a job status", lp.Status)
	}
	before, err := errand.ParsePageCursor("job", lp.Cursor)
	if err != nil {
		return nil, "", err
	}
	owner, legacy := "", ""
	if !p.Can(errand.PermJobsRead, "any") {
		if !p.Can(errand.PermJobsRead, "own") || p.ID == "" {
			return nil, "", errand.Deny(errand.PermJobsRead, "jobs")
		}
		owner, legacy = p.ID, p.LegacyOwner()
	}
	lctx, cancel := context.WithTimeout(ctx, s.cfg.ListTimeout)
	defer cancel()
	jobs, err := s.store.ListJobs(lctx, storage.ListJobsParams{Tenant: p.Tenant, Owner: owner, LegacyOwner: legacy, Operation: lp.Operation,
		Status: lp.Status, Before: before, Limit: lp.Limit + 1, MaxBytes: s.cfg.PageBytes})
	if err != nil && lctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return nil, "", &errand.Error{Code: errand.EUNAVAILABLE, RetryAfter: time.Second,
			Message: fmt.Sprintf("listing jobs took longer than %s: try again, or narrow the list (operation=, status=)", s.cfg.ListTimeout)}
	}
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	return pageOf(jobs, lp.Limit, s.cfg.PageBytes)
}

// pageOf cuts what the store returned for a page of limit (it was asked for one
// more) and says where the next page starts: after the last job, when the
// extra one came or the byte budget ran out.
func pageOf(jobs []*errand.Job, limit int, maxBytes int64) ([]*errand.Job, string, error) {
	var bytes int64
	for _, j := range jobs[:min(len(jobs), limit)] {
		bytes += j.Bytes()
	}
	if len(jobs) == 0 || !errand.PageCut(len(jobs), limit+1, bytes, maxBytes) {
		return jobs, "", nil
	}
	jobs = jobs[:min(len(jobs), limit)]
	return jobs, errand.PageCursor(jobs[len(jobs)-1].ID), nil
}

// Events returns a job's events after a cursor, oldest first: up to limit, fewer
// when their data passes Config.PageBytes (see errand.PageCut). A cursor beyond
// any the log handed out is an invalid_cursor error.
func (s *Service) Events(ctx context.Context, p errand.Principal, id, after string, limit int) ([]*errand.Event, error) {
	seq, err := errand.ParseCursor(after)
	if err != nil {
		return nil, err
	}
	if limit < 1 || limit > 1000 {
		return nil, errand.Errorf(errand.EINVALID, "limit must be between 1 and 1000")
	}
	if _, err := s.Get(ctx, p, id); err != nil {
		return nil, err
	}
	if err := storage.CheckHead(ctx, s.store, seq); err != nil {
		return nil, err
	}
	return s.store.ListEvents(ctx, storage.ListEventsParams{Tenant: p.Tenant, Stream: id, After: seq, Limit: limit,
		MaxBytes: s.cfg.PageBytes})
}

// PageBytes is the byte budget List and Events pages are read with.
func (s *Service) PageBytes() int64 { return s.cfg.PageBytes }

// Artifact opens an artifact of a job the principal may see.
func (s *Service) Artifact(ctx context.Context, p errand.Principal, id, name string) (errand.Artifact, artifact.File, error) {
	j, err := s.Get(ctx, p, id)
	if err != nil {
		return errand.Artifact{}, nil, err
	}
	for _, a := range j.Artifacts {
		if a.Name == name && s.cfg.Artifacts != nil {
			f, err := s.cfg.Artifacts.Open(ctx, id, name)
			return a, f, err
		}
	}
	return errand.Artifact{}, nil, errand.Errorf(errand.ENOTFOUND, "job %s has no artifact %q", id, name)
}
