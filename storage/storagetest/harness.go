// Package storagetest is the conformance suite every storage driver runs: the
// same behaviours, checked the same way, on SQLite and PostgreSQL.
//
//	func TestConformance(t *testing.T) {
//		storagetest.Exercise(t, func(t *testing.T) storage.Store { return openTestStore(t) })
//	}
package storagetest

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/queue"
	"github.com/errandhq/errand/storage"
)

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at a fixed time.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Harness is a store with the services that run on it, on a test clock.
type Harness struct {
	T     *testing.T
	Store storage.Store
	Clock *Clock
	Hub   *event.Hub
	Jobs  *job.Service
	Queue *queue.Queue
	Maint *queue.Maintainer
	Ctx   context.Context
	// Commits records every commit notification, in order.
	Commits *Recorder
}

// Recorder is a storage.Notifier that keeps what it hears.
type Recorder struct {
	mu      sync.Mutex
	commits []storage.Commit
}

// Committed records a copy of c.
func (r *Recorder) Committed(c *storage.Commit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commits = append(r.commits, storage.Commit{Events: append([]*errand.Event(nil), c.Events...),
		Ready: append([]string(nil), c.Ready...), Scheduled: c.Scheduled})
}

// Events returns every event heard so far, in order.
func (r *Recorder) Events() []*errand.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*errand.Event
	for _, c := range r.commits {
		out = append(out, c.Events...)
	}
	return out
}

// Dev is the principal the suite submits as; Other is of another tenant.
var (
	Dev   = errand.DevPrincipal
	Other = errand.Principal{ID: "mallory", Subject: "mallory", Tenant: "other", Permissions: []string{errand.PermAdmin}}
)

// NewHarness wires the services over store for the operations ops.
func NewHarness(t *testing.T, store storage.Store, ops ...errand.Operation) *Harness {
	t.Helper()
	h := &Harness{T: t, Store: store, Clock: NewClock(), Hub: event.NewHub(), Commits: &Recorder{}, Ctx: context.Background()}
	store.Listen(h.Hub)
	store.Listen(h.Commits)
	sig := queue.NewSignal()
	store.Listen(sig)
	var err error
	h.Jobs, err = job.NewService(store, h.Hub, ops, &job.Config{Now: h.Clock.Now})
	if err != nil {
		t.Fatalf("job.NewService: %v", err)
	}
	if h.Queue, err = queue.New(store, sig, ops, &queue.Config{Now: h.Clock.Now}); err != nil {
		t.Fatalf("queue.New: %v", err)
	}
	h.Maint = queue.NewMaintainer(h.Queue, &queue.MaintainConfig{Log: slog.New(slog.DiscardHandler)})
	return h
}

// Submit submits input to operation and fails the test on error.
func (h *Harness) Submit(op string, sp job.SubmitParams) *errand.Job {
	h.T.Helper()
	sp.Operation = op
	j, _, err := h.Jobs.Submit(h.Ctx, Dev, sp)
	if err != nil {
		h.T.Fatalf("Submit(%s): %v", op, err)
	}
	return j
}

// Lease leases up to n jobs of ops and fails the test on error.
func (h *Harness) Lease(n int, ops ...string) []errand.Lease {
	h.T.Helper()
	ls, err := h.Queue.Lease(h.Ctx, queue.LeaseParams{Operations: ops, MaxJobs: n, Worker: "test"})
	if err != nil {
		h.T.Fatalf("Lease(%v): %v", ops, err)
	}
	return ls
}

// Get reads a job and fails the test on error.
func (h *Harness) Get(id string) *errand.Job {
	h.T.Helper()
	j, err := h.Jobs.Get(h.Ctx, Dev, id)
	if err != nil {
		h.T.Fatalf("Get(%s): %v", id, err)
	}
	return j
}

// Code fails the test unless err carries the error code want.
func Code(t *testing.T, err error, want string) {
	t.Helper()
	if got := errand.ErrorCode(err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
}

// Input is a small JSON input.
func Input(s string) json.RawMessage { return json.RawMessage(s) }

// Op is an operation with the suite's defaults.
func Op(name string) errand.Operation {
	return errand.Operation{Name: name, Retry: errand.RetryPolicy{MaxAttempts: 3, Initial: 10 * time.Second, Max: time.Minute}}.WithDefaults()
}
