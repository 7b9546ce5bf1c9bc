// Package storagetest is the conformance suite every storage driver runs: it
// calls the methods of storage.Store, storage.Reader and storage.Tx directly,
// over rows made by a small factory (Job, Event, Endpoint, Delivery), and pins
// each method's contract — what it returns and in which order, which rows it
// claims and locks, what it answers for a row that does not exist, what a
// commit reports — the same way on SQLite and PostgreSQL.
//
//	func TestConformance(t *testing.T) {
//		storagetest.Exercise(t, func(t *testing.T) storage.Store { return openTestStore(t) })
//	}
//
// It imports nothing above storage: the services' behaviour (job, queue,
// webhook, …) is tested in their own packages. A driver that runs
// transactions concurrently with row locks also runs SkipLocked.
package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// Exercise runs the whole suite; open returns a new, empty store for one test
// (closed by the test's cleanup). The tests run in parallel.
func Exercise(t *testing.T, open func(t *testing.T) storage.Store) {
	tests := map[string]func(*testing.T, storage.Store){}
	for _, group := range []map[string]func(*testing.T, storage.Store){
		jobTests, claimTests, eventTests, commitTests, webhookTests, accessTests, groupTests, budgetTests, bridgeTests,
		telemetryTests, flowTests, scheduleTests,
	} {
		maps.Copy(tests, group)
	}
	for _, name := range slices.Sorted(maps.Keys(tests)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tests[name](t, open(t))
		})
	}
}

// T0 is the time the suite's rows are made at.
var T0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// ctx is the context of the suite's Store and Reader calls.
var ctx = context.Background()

// Job is a queued job of operation "report" in tenant "acme", owner "key_a",
// made at T0: the factory the suite's tests change and insert.
func Job(id string) *errand.Job {
	return &errand.Job{ID: id, Tenant: "acme", Owner: "key_a", Operation: "report", Status: errand.StatusQueued,
		Input: json.RawMessage(`{}`), MaxAttempts: 3, TimeoutSeconds: 60, CreatedAt: T0, RunAt: T0}
}

// Event is an event of stream in tenant "acme" at T0 with data.
func Event(stream, data string) *errand.Event {
	return &errand.Event{Stream: stream, Tenant: "acme", Type: "test", Time: T0, Data: json.RawMessage(data)}
}

// tx runs fn in a transaction and fails the test when it fails.
func tx(t *testing.T, s storage.Store, fn func(storage.Tx) error) {
	t.Helper()
	if err := s.WithTx(ctx, fn); err != nil {
		t.Fatalf("WithTx: %v", err)
	}
}

// insertJobs stores jobs in one transaction.
func insertJobs(t *testing.T, s storage.Store, jobs ...*errand.Job) {
	t.Helper()
	tx(t, s, func(tx storage.Tx) error {
		for _, j := range jobs {
			if err := tx.InsertJob(j); err != nil {
				return err
			}
		}
		return nil
	})
}

// insertEvents appends events in one transaction and returns their seqs.
func insertEvents(t *testing.T, s storage.Store, evs ...*errand.Event) []int64 {
	t.Helper()
	tx(t, s, func(tx storage.Tx) error {
		for _, e := range evs {
			if err := tx.InsertEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
	var seqs []int64
	for _, e := range evs {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

// read runs fn in a transaction (to call Tx methods that read) and returns
// what it returned.
func read[T any](t *testing.T, s storage.Store, fn func(storage.Tx) (T, error)) T {
	t.Helper()
	var out T
	tx(t, s, func(tx storage.Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	return out
}

// wantNotFound fails the test unless err is (or wraps) storage.ErrNotFound.
func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: err = %v, want ErrNotFound", what, err)
	}
}

func jobIDs(js []*errand.Job) []string {
	out := []string{}
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
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
	r.commits = append(r.commits, storage.Commit{Events: slices.Clone(c.Events), Ready: slices.Clone(c.Ready),
		Scheduled: c.Scheduled, Changed: slices.Clone(c.Changed)})
}

// Commits returns every commit heard so far, in order.
func (r *Recorder) Commits() []storage.Commit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.commits)
}

// Events returns every event heard so far, in order.
func (r *Recorder) Events() []*errand.Event {
	var out []*errand.Event
	for _, c := range r.Commits() {
		out = append(out, c.Events...)
	}
	return out
}

// Await waits (up to 30 s: PostgreSQL's notifiers hear commits through its
// tailer, shortly after WithTx returns) until ok holds for what r heard, and
// reports whether it did.
func (r *Recorder) Await(ok func(heard []storage.Commit) bool) bool {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if ok(r.Commits()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
