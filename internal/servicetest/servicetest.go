// Package servicetest wires the jobs service and the queue over a test store
// for the services' own tests (job, queue): one harness, on a test clock,
// that submits, leases and reads as the dev principal.
package servicetest

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/queue"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/storagetest"
)

// Harness is the jobs service, the queue and its maintainer over a store, on
// a test clock.
type Harness struct {
	T     *testing.T
	Store storage.Store
	Clock *teststore.Clock
	Hub   *event.Hub
	Jobs  *job.Service
	Queue *queue.Queue
	Maint *queue.Maintainer
	Ctx   context.Context
	// Commits records every commit notification, in order.
	Commits *storagetest.Recorder
}

// The principals the tests act as: Dev, and Mallory of another tenant.
var (
	Dev     = errand.DevPrincipal
	Mallory = errand.Principal{ID: "mallory", Subject: "mallory", Tenant: "other", Permissions: []string{errand.PermAdmin}}
)

// New wires the services over store for the operations ops.
func New(t *testing.T, store storage.Store, ops ...errand.Operation) *Harness {
	t.Helper()
	h := &Harness{T: t, Store: store, Clock: teststore.NewClock(), Hub: event.NewHub(), Commits: &storagetest.Recorder{},
		Ctx: context.Background()}
	store.Listen(h.Hub)
	store.Listen(h.Commits)
	sig := queue.NewSignal()
	store.Listen(sig)
	var err error
	if h.Jobs, err = job.NewService(store, h.Hub, ops, &job.Config{Now: h.Clock.Now}); err != nil {
		t.Fatalf("job.NewService: %v", err)
	}
	if h.Queue, err = queue.New(store, sig, ops, &queue.Config{Now: h.Clock.Now}); err != nil {
		t.Fatalf("queue.New: %v", err)
	}
	h.Maint = queue.NewMaintainer(h.Queue, &queue.MaintainConfig{Log: slog.New(slog.DiscardHandler)})
	return h
}

// Submit submits to operation as Dev and fails the test on error.
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

// Get reads a job as Dev and fails the test on error.
func (h *Harness) Get(id string) *errand.Job {
	h.T.Helper()
	j, err := h.Jobs.Get(h.Ctx, Dev, id)
	if err != nil {
		h.T.Fatalf("Get(%s): %v", id, err)
	}
	return j
}

// LeaseOf is the lease id of a running job (the test holds it).
func (h *Harness) LeaseOf(id string) string { return h.Get(id).LeaseID() }

// Code fails the test unless err carries the error code want.
func Code(t *testing.T, err error, want string) {
	t.Helper()
	if got := errand.ErrorCode(err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
}

// Input is a JSON document.
func Input(s string) json.RawMessage { return json.RawMessage(s) }

// Op is an operation with 3 attempts, backing off from 10 s to 1 min.
func Op(name string) errand.Operation {
	return errand.Operation{Name: name, Retry: errand.RetryPolicy{MaxAttempts: 3, Initial: 10 * time.Second, Max: time.Minute}}.WithDefaults()
}

// LeaseIDs are the ids of the leased jobs.
func LeaseIDs(ls []errand.Lease) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Job.ID)
	}
	return out
}

// JobIDs are the ids of jobs.
func JobIDs(js []*errand.Job) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}
