package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// groupTests pin WithTx when drivers batch calls into one transaction: a
// failed call undoes only its own writes, and a call run again leaves no
// trace of an earlier run.
var groupTests = map[string]func(*testing.T, storage.Store){
	"GroupCommitIsolation":   testGroupCommitIsolation,
	"RerunLeavesNoTrace":     testRerunLeavesNoTrace,
	"FailedCallsKeepNoWrite": testFailedCallsKeepNoWrite,
	"GroupCommitModel":       testGroupCommitModel,
}

// testGroupCommitIsolation: of 50 concurrent calls, the half that fail keep
// nothing and the others everything; a panic is its call's error, and the
// store works after it.
func testGroupCommitIsolation(t *testing.T, s storage.Store) {
	var wg sync.WaitGroup
	boom := errors.New("boom")
	errs := make([]error, 50)
	for i := range 50 {
		wg.Go(func() {
			errs[i] = s.WithTx(ctx, func(tx storage.Tx) error {
				if err := tx.InsertJob(Job(fmt.Sprintf("job_%02d", i))); err != nil {
					return err
				}
				if i%2 == 1 {
					return boom // its insert must vanish, the others must stay
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if want := i%2 == 1; errors.Is(err, boom) != want {
			t.Fatalf("call %d: err %v, want boom=%v", i, err, want)
		}
	}
	list, _ := s.ListJobs(ctx, storage.ListJobsParams{Tenant: "acme", Limit: 100})
	if len(list) != 25 {
		t.Fatalf("jobs after 25 good and 25 failed calls = %d, want 25", len(list))
	}
	if err := s.WithTx(ctx, func(storage.Tx) error { panic("bad caller") }); err == nil {
		t.Fatalf("a panicking call returned no error")
	}
	insertJobs(t, s, Job("job_after")) // the store still works
}

// testRerunLeavesNoTrace: concurrent calls that insert a job and an event
// and report a ready operation, beside calls whose insert the database
// refuses (which fails the transaction they share, on drivers that group
// calls, so everyone's fn runs again). Whatever runs again, each successful
// call's writes are stored once, its event is heard once with the seq its
// last run was given, and its operation is heard ready; a refused call
// leaves nothing.
func testRerunLeavesNoTrace(t *testing.T, s storage.Store) {
	rec := &Recorder{}
	s.Listen(rec)
	insertJobs(t, s, Job("job_taken"))
	const n = 64
	runs := make([]atomic.Int32, n)
	events := make([]*errand.Event, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.WithTx(ctx, func(tx storage.Tx) error {
				runs[i].Add(1)
				events[i] = Event(fmt.Sprintf("job_%02d", i), fmt.Sprintf(`{"call":%d}`, i)) // afresh each run
				if err := tx.InsertJob(Job(fmt.Sprintf("job_%02d", i))); err != nil {
					return err
				}
				if err := tx.InsertEvent(events[i]); err != nil {
					return err
				}
				tx.JobsReady(fmt.Sprintf("op%02d", i))
				if i%8 == 5 {
					return tx.InsertJob(Job("job_taken")) // refused, now or at commit
				}
				return nil
			})
		})
	}
	wg.Wait()
	again := 0
	for i := range n {
		if runs[i].Load() > 1 {
			again++
		}
		_, err := s.GetJob(ctx, "acme", fmt.Sprintf("job_%02d", i))
		stored, _ := s.ListEvents(ctx, storage.ListEventsParams{Tenant: "acme", Stream: fmt.Sprintf("job_%02d", i), Limit: 10})
		if i%8 == 5 {
			if errs[i] == nil || !errors.Is(err, storage.ErrNotFound) || len(stored) != 0 {
				t.Errorf("refused call %d: err %v, its job %v, %d events; want an error and nothing stored", i, errs[i], err, len(stored))
			}
			continue
		}
		if errs[i] != nil || err != nil || len(stored) != 1 || stored[0].Seq != events[i].Seq {
			t.Errorf("call %d (ran %d times): %v; job %v; events %d (want 1 with seq %d)", i, runs[i].Load(), errs[i], err, len(stored), events[i].Seq)
		}
	}
	t.Logf("%d of %d calls ran more than once", again, n)
	if !rec.Await(func([]storage.Commit) bool { return heardAll(rec, errs) }) {
		t.Errorf("not every successful call was heard (its event and its ready operation) within 30 s")
	}
	checkHeardOnce(t, rec, events, errs)
}

// heardAll reports whether rec heard every successful call's event and operation.
func heardAll(rec *Recorder, errs []error) bool {
	data, ready := heardCalls(rec)
	for i, err := range errs {
		if err == nil && (data[fmt.Sprintf(`{"call":%d}`, i)] == 0 || !ready[fmt.Sprintf("op%02d", i)]) {
			return false
		}
	}
	return true
}

// heardCalls counts the events rec heard by their data, and the operations
// it heard ready.
func heardCalls(rec *Recorder) (data map[string]int, ready map[string]bool) {
	data, ready = map[string]int{}, map[string]bool{}
	for _, c := range rec.Commits() {
		for _, e := range c.Events {
			data[string(e.Data)]++
		}
		for _, op := range c.Ready {
			ready[op] = true
		}
	}
	return data, ready
}

// testFailedCallsKeepNoWrite: calls that write with each write method and
// then fail, running beside calls that succeed (so that drivers group them),
// leave none of their writes, whichever statement carried it (one that
// returns a row, such as TakeTicket's DELETE … RETURNING, included).
func testFailedCallsKeepNoWrite(t *testing.T, s storage.Store) {
	tx(t, s, func(tx storage.Tx) error {
		for i := range 8 {
			if err := tx.InsertTicket(fmt.Sprintf("t%d", i), []byte(`{}`), T0.Add(time.Hour)); err != nil {
				return err
			}
			if err := tx.InsertJob(Job(fmt.Sprintf("job_keep%d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	boom := errors.New("boom")
	writes := []func(tx storage.Tx, i int) error{
		func(tx storage.Tx, i int) error { _, err := tx.TakeTicket(fmt.Sprintf("t%d", i), T0); return err },
		func(tx storage.Tx, i int) error {
			return tx.InsertAudit([]*errand.AuditEntry{{Time: T0, Tenant: "acme", Action: fmt.Sprintf("failed%d", i)}})
		},
		func(tx storage.Tx, i int) error { return tx.DeleteJob(fmt.Sprintf("job_keep%d", i)) },
		func(tx storage.Tx, i int) error { return tx.PutSetting(fmt.Sprintf("failed%d", i), "x") },
		func(tx storage.Tx, i int) error {
			return tx.InsertEndpoint(Endpoint(fmt.Sprintf("ep_failed%d", i), "acme"))
		},
	}
	var wg sync.WaitGroup
	for round := range 8 {
		for k, write := range writes {
			wg.Go(func() {
				err := s.WithTx(ctx, func(tx storage.Tx) error {
					if err := write(tx, round); err != nil {
						return err
					}
					return boom
				})
				if !errors.Is(err, boom) {
					t.Errorf("write %d, round %d: err %v, want boom", k, round, err)
				}
			})
			wg.Go(func() { insertEvents(t, s, Event("ok", `{}`)) })
		}
	}
	wg.Wait()
	for i := range 8 {
		if _, err := readErr(s, func(tx storage.Tx) ([]byte, error) { return tx.TakeTicket(fmt.Sprintf("t%d", i), T0) }); err != nil {
			t.Errorf("ticket t%d, taken by a call that failed: %v; want it still there", i, err)
		}
		if _, err := s.GetJob(ctx, "acme", fmt.Sprintf("job_keep%d", i)); err != nil {
			t.Errorf("job_keep%d, deleted by a call that failed: %v", i, err)
		}
		_, err := readErr(s, func(tx storage.Tx) (string, error) { return tx.GetSetting(fmt.Sprintf("failed%d", i)) })
		wantNotFound(t, "a failed call's setting", err)
	}
	if es, err := s.ListAudit(ctx, storage.ListAuditParams{AllTenants: true, Limit: 100}); err != nil || len(es) != 0 {
		t.Errorf("audit entries of failed calls: %d, %v; want none", len(es), err)
	}
	if eps, err := s.ListEndpoints(ctx, ""); err != nil || len(eps) != 0 {
		t.Errorf("endpoints of failed calls: %d, %v; want none", len(eps), err)
	}
}

// checkHeardOnce: each successful call's event was heard once, with the seq
// its last run was given, and its operation ready; nothing of a failed call.
func checkHeardOnce(t *testing.T, rec *Recorder, events []*errand.Event, errs []error) {
	t.Helper()
	data, ready := heardCalls(rec)
	seqs := map[int64]bool{}
	for _, e := range rec.Events() {
		seqs[e.Seq] = true
	}
	for i, e := range events {
		d, op := fmt.Sprintf(`{"call":%d}`, i), fmt.Sprintf("op%02d", i)
		switch {
		case errs[i] != nil && (data[d] > 0 || ready[op]):
			t.Errorf("failed call %d: heard its event %d times, ready %v; want nothing", i, data[d], ready[op])
		case errs[i] == nil && (data[d] != 1 || !seqs[e.Seq] || !ready[op]):
			t.Errorf("call %d: its event heard %d times (seq %d heard: %v), ready %v; want once, with its seq, and ready",
				i, data[d], e.Seq, seqs[e.Seq], ready[op])
		}
	}
}
