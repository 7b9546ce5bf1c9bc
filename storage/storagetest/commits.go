package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// commitTests pin what notifiers hear: every committed event once, in log
// order, and nothing of a transaction that failed; the operations that
// gained queued jobs, the earliest newly scheduled time, the shared state
// that changed.
var commitTests = map[string]func(*testing.T, storage.Store){
	"CommitEvents":    testCommitEvents,
	"CommitReady":     testCommitReady,
	"CommitChanged":   testCommitChanged,
	"ListenAfterOpen": testListenAfterOpen,
}

// testCommitEvents: concurrent transactions, some failing; the notifier hears
// each committed event once, as stored, in increasing seq order, and none of
// the failed transactions'.
func testCommitEvents(t *testing.T, s storage.Store) {
	rec := &Recorder{}
	s.Listen(rec)
	var mu sync.Mutex
	committed := map[int64]string{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				evs := []*errand.Event{Event("s", fmt.Sprintf(`{"g":%d,"i":%d,"k":0}`, g, i)), Event("t", fmt.Sprintf(`{"g":%d,"i":%d,"k":1}`, g, i))}
				err := s.WithTx(ctx, func(tx storage.Tx) error {
					for _, e := range evs {
						if err := tx.InsertEvent(e); err != nil {
							return err
						}
					}
					if i%4 == 1 {
						return errors.New("roll back")
					}
					return nil
				})
				if err == nil {
					mu.Lock()
					for _, e := range evs {
						committed[e.Seq] = string(e.Data)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if !rec.Await(func([]storage.Commit) bool { return len(rec.Events()) >= len(committed) }) {
		t.Fatalf("heard %d events, %d committed", len(rec.Events()), len(committed))
	}
	heard := rec.Events()
	for i, e := range heard {
		if i > 0 && e.Seq <= heard[i-1].Seq {
			t.Fatalf("heard seq %d after %d; want log order", e.Seq, heard[i-1].Seq)
		}
		if data, ok := committed[e.Seq]; !ok || data != string(e.Data) || e.Tenant != "acme" {
			t.Fatalf("heard seq %d (%s), committed as %q", e.Seq, e.Data, data)
		}
	}
	if len(heard) != len(committed) {
		t.Fatalf("heard %d events, %d committed", len(heard), len(committed))
	}
}

// testCommitReady: JobsReady and JobsScheduled of committed transactions are
// heard (each operation once per commit; the earliest time), those of a
// failed one never.
func testCommitReady(t *testing.T, s storage.Store) {
	rec := &Recorder{}
	s.Listen(rec)
	t1, t2 := T0.Add(time.Minute), T0.Add(time.Hour)
	tx(t, s, func(tx storage.Tx) error {
		tx.JobsReady("a")
		tx.JobsReady("b")
		tx.JobsReady("a")
		tx.JobsScheduled(t2)
		tx.JobsScheduled(t1)
		return tx.InsertEvent(Event("s", `{}`)) // something for every driver to carry
	})
	err := s.WithTx(ctx, func(tx storage.Tx) error {
		tx.JobsReady("failed")
		tx.JobsScheduled(T0)
		return errors.New("roll back")
	})
	if err == nil {
		t.Fatal("the failing transaction committed")
	}
	tx(t, s, func(tx storage.Tx) error { return tx.InsertEvent(Event("s", `{}`)) }) // a later commit, heard after
	var ready []string
	var earliest time.Time
	heard := func(cs []storage.Commit) bool {
		ready, earliest = nil, time.Time{}
		for _, c := range cs {
			for i, op := range c.Ready {
				if slices.Contains(c.Ready[:i], op) {
					t.Errorf("a commit reported %q twice: %v", op, c.Ready)
				}
			}
			ready = append(ready, c.Ready...)
			if !c.Scheduled.IsZero() && (earliest.IsZero() || c.Scheduled.Before(earliest)) {
				earliest = c.Scheduled
			}
		}
		slices.Sort(ready)
		return len(rec.Events()) == 2 && len(ready) >= 2 && !earliest.IsZero()
	}
	ok := rec.Await(heard)
	time.Sleep(50 * time.Millisecond) // anything of the failed transaction would show now
	heard(rec.Commits())
	if !ok || !slices.Equal(ready, []string{"a", "b"}) || !earliest.Equal(t1) {
		t.Errorf("heard ready %v, scheduled %v; want [a b] and %v (nothing of the failed transaction)", ready, earliest, t1)
	}
}

// testCommitChanged: a commit that writes endpoints or revokes API keys names
// what changed, so every node's caches reload; one that writes events only
// names nothing.
func testCommitChanged(t *testing.T, s storage.Store) {
	rec := &Recorder{}
	s.Listen(rec)
	// changedBy commits fn's writes with a marker event and returns what the
	// commits heard since named as changed (a driver may report them apart
	// from the events: PostgreSQL's tailer does).
	changedBy := func(what string, fn func(storage.Tx) error, want []string) []string {
		t.Helper()
		from := len(rec.Commits())
		marker := Event("marker", `{}`)
		tx(t, s, func(tx storage.Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			return tx.InsertEvent(marker)
		})
		var changed []string
		ok := rec.Await(func(cs []storage.Commit) bool {
			changed = nil
			heard := false
			for _, c := range cs[from:] {
				changed = append(changed, c.Changed...)
				heard = heard || slices.ContainsFunc(c.Events, func(e *errand.Event) bool { return e.Seq == marker.Seq })
			}
			return heard && len(changed) >= len(want)
		})
		if !ok {
			t.Fatalf("%s: heard %v, want the commit with Changed %v", what, changed, want)
		}
		return changed
	}
	key := &errand.APIKey{ID: "key_1", Hash: "h1", Prefix: "ek_1", Tenant: "acme", CreatedAt: T0}
	for _, c := range []struct {
		what string
		fn   func(storage.Tx) error
		want []string
	}{
		{"an event", func(storage.Tx) error { return nil }, nil},
		{"InsertEndpoint", func(tx storage.Tx) error { return tx.InsertEndpoint(Endpoint("ep_1", "acme")) }, []string{storage.ChangedEndpoints}},
		{"UpdateEndpoint", func(tx storage.Tx) error { return tx.UpdateEndpoint(Endpoint("ep_1", "acme")) }, []string{storage.ChangedEndpoints}},
		{"DeleteEndpoint", func(tx storage.Tx) error { return tx.DeleteEndpoint("acme", "ep_1") }, []string{storage.ChangedEndpoints}},
		{"InsertAPIKey", func(tx storage.Tx) error { return tx.InsertAPIKey(key) }, nil},
		{"UpdateAPIKey", func(tx storage.Tx) error { key.RevokedAt = &T0; return tx.UpdateAPIKey(key) }, []string{storage.ChangedAPIKeys}},
	} {
		if got := changedBy(c.what, c.fn, c.want); !slices.Equal(got, c.want) {
			t.Errorf("a commit of %s reported Changed %v, want %v", c.what, got, c.want)
		}
	}
}

// testListenAfterOpen: a notifier registered later hears every commit made
// after it registered (and perhaps some just before, on a driver whose
// notifiers hear commits after WithTx returned: PostgreSQL's tailer), each
// once.
func testListenAfterOpen(t *testing.T, s storage.Store) {
	insertEvents(t, s, Event("s", `{"n":1}`))
	rec := &Recorder{}
	s.Listen(rec)
	after := insertEvents(t, s, Event("s", `{"n":2}`), Event("s", `{"n":3}`))
	if !rec.Await(func([]storage.Commit) bool { return len(rec.Events()) >= 2 }) {
		t.Fatal("the commit after Listen was not heard")
	}
	time.Sleep(50 * time.Millisecond) // anything heard twice would show now
	evs := rec.Events()
	if len(evs) < 2 || len(evs) > 3 || evs[len(evs)-2].Seq != after[0] || evs[len(evs)-1].Seq != after[1] {
		t.Errorf("heard %d events; want the 2 committed after Listen, in order, each once", len(evs))
	}
}
