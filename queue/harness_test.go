package queue_test

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

// harness is the queue and its maintainer over a test store, on a test
// clock, with the jobs service that submits what they lease.
type harness struct {
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

// The principals the tests submit as: dev, and mallory of another tenant.
var (
	dev     = errand.DevPrincipal
	mallory = errand.Principal{ID: "mallory", Subject: "mallory", Tenant: "other", Permissions: []string{errand.PermAdmin}}
)

func newHarness(t *testing.T, store storage.Store, ops ...errand.Operation) *harness {
	t.Helper()
	h := &harness{T: t, Store: store, Clock: teststore.NewClock(), Hub: event.NewHub(), Commits: &storagetest.Recorder{},
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

// Submit submits to operation as dev and fails the test on error.
func (h *harness) Submit(op string, sp job.SubmitParams) *errand.Job {
	h.T.Helper()
	sp.Operation = op
	j, _, err := h.Jobs.Submit(h.Ctx, dev, sp)
	if err != nil {
		h.T.Fatalf("Submit(%s): %v", op, err)
	}
	return j
}

// Lease leases up to n jobs of ops and fails the test on error.
func (h *harness) Lease(n int, ops ...string) []errand.Lease {
	h.T.Helper()
	ls, err := h.Queue.Lease(h.Ctx, queue.LeaseParams{Operations: ops, MaxJobs: n, Worker: "test"})
	if err != nil {
		h.T.Fatalf("Lease(%v): %v", ops, err)
	}
	return ls
}

// Get reads a job as dev and fails the test on error.
func (h *harness) Get(id string) *errand.Job {
	h.T.Helper()
	j, err := h.Jobs.Get(h.Ctx, dev, id)
	if err != nil {
		h.T.Fatalf("Get(%s): %v", id, err)
	}
	return j
}

// code fails the test unless err carries the error code want.
func code(t *testing.T, err error, want string) {
	t.Helper()
	if got := errand.ErrorCode(err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
}

func input(s string) json.RawMessage { return json.RawMessage(s) }

// op is an operation with 3 attempts, backing off from 10 s to 1 min.
func op(name string) errand.Operation {
	return errand.Operation{Name: name, Retry: errand.RetryPolicy{MaxAttempts: 3, Initial: 10 * time.Second, Max: time.Minute}}.WithDefaults()
}

func leaseIDs(ls []errand.Lease) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Job.ID)
	}
	return out
}
