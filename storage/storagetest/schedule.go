package storagetest

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// scheduleTests pin storage.ScheduleTx and storage.ScheduleReader: an operation's stored
// state, the start rate's locked TAT, running jobs by key, the fair keys of
// queued jobs and the queued jobs of one key.
var scheduleTests = map[string]func(*testing.T, storage.Store){
	"OperationFlow":      testOperationFlow,
	"StartTATSerializes": testStartTATSerializes,
	"RunningByKey":       testRunningByKey,
	"FairKeys":           testFairKeys,
	"QueuedJobsWhere":    testQueuedJobsWhere,
	"QueuedHeads":        testQueuedHeads,
	"RunningCounts":      testRunningCounts,
}

// testOperationFlow: an operation never paused has the zero state; a pause
// and a resume are stored (and listed); the TAT is kept apart from the pause.
func testOperationFlow(t *testing.T, s storage.Store) {
	if f := read(t, s, func(tx storage.Tx) (storage.OperationFlow, error) { return tx.OperationFlow("report") }); f.Paused || !f.StartTAT.IsZero() || f.Operation != "report" {
		t.Errorf("OperationFlow(report) before any = %+v, want the zero state of report", f)
	}
	tx(t, s, func(tx storage.Tx) error { return tx.SetPaused("report", true, T0) })
	f := read(t, s, func(tx storage.Tx) (storage.OperationFlow, error) { return tx.OperationFlow("report") })
	if !f.Paused || !f.UpdatedAt.Equal(T0) {
		t.Errorf("OperationFlow(report) after SetPaused(true) = %+v, want paused at %v", f, T0)
	}
	tat := T0.Add(time.Second)
	tx(t, s, func(tx storage.Tx) error {
		if _, err := tx.LockStartTAT("report"); err != nil {
			return err
		}
		return tx.PutStartTAT("report", tat)
	})
	tx(t, s, func(tx storage.Tx) error { return tx.SetPaused("other", false, T0) })
	flows, err := s.OperationFlows(ctx)
	if err != nil || len(flows) != 2 || flows[0].Operation != "other" || flows[0].Paused ||
		flows[1].Operation != "report" || !flows[1].Paused || !flows[1].StartTAT.Equal(tat) {
		t.Errorf("OperationFlows = %+v, %v; want other (not paused), then report paused with TAT %v", flows, err, tat)
	}
	tx(t, s, func(tx storage.Tx) error { return tx.SetPaused("report", false, T0.Add(time.Minute)) })
	if f := read(t, s, func(tx storage.Tx) (storage.OperationFlow, error) { return tx.OperationFlow("report") }); f.Paused || !f.StartTAT.Equal(tat) {
		t.Errorf("OperationFlow(report) after resume = %+v, want not paused, TAT %v kept", f, tat)
	}
}

// testStartTATSerializes: transactions that lock an operation's TAT take
// turns, so 40 concurrent read-and-advance steps advance it 40 times.
func testStartTATSerializes(t *testing.T, s storage.Store) {
	const n = 40
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			err := s.WithTx(ctx, func(tx storage.Tx) error {
				tat, err := tx.LockStartTAT("report")
				if err != nil {
					return err
				}
				if tat.IsZero() {
					tat = T0
				}
				return tx.PutStartTAT("report", tat.Add(time.Millisecond))
			})
			if err != nil {
				t.Errorf("advance TAT: %v", err)
			}
		})
	}
	wg.Wait()
	got := read(t, s, func(tx storage.Tx) (time.Time, error) { return tx.LockStartTAT("report") })
	if want := T0.Add(n * time.Millisecond); !got.Equal(want) {
		t.Errorf("TAT after %d concurrent steps = %v, want %v (a step was lost)", n, got, want)
	}
}

// testRunningByKey: running jobs of one operation counted by concurrency key
// (those with none, "", are not counted).
func testRunningByKey(t *testing.T, s storage.Store) {
	var jobs []*errand.Job
	for i, k := range []string{"a", "a", "b", "", "a"} {
		j := Job(fmt.Sprintf("job_%d", i))
		j.ConcurrencyKey, j.Status = k, errand.StatusRunning
		jobs = append(jobs, j)
	}
	q, o := Job("job_q"), Job("job_o")
	q.ConcurrencyKey = "b"                                                       // queued: not counted
	o.ConcurrencyKey, o.Status, o.Operation = "a", errand.StatusRunning, "other" // another operation
	insertJobs(t, s, append(jobs, q, o)...)
	got := read(t, s, func(tx storage.Tx) (map[string]int, error) { return tx.RunningByKey("report") })
	if want := map[string]int{"a": 3, "b": 1}; !maps.Equal(got, want) { // "": no key
		t.Errorf("RunningByKey(report) = %v, want %v", got, want)
	}
}

// testFairKeys: the distinct fair keys of an operation's queued jobs, in
// order, of one tenant or all, up to a limit ("", no key, is none of them).
func testFairKeys(t *testing.T, s storage.Store) {
	var jobs []*errand.Job
	for i, k := range []string{"m", "c", "m", "x", "c", ""} {
		j := Job(fmt.Sprintf("job_%d", i))
		j.FairKey = k
		if k == "x" {
			j.Tenant = "globex"
		}
		jobs = append(jobs, j)
	}
	r, o := Job("job_r"), Job("job_o")
	r.FairKey, r.Status = "a", errand.StatusRunning // not queued
	o.FairKey, o.Operation = "b", "other"
	insertJobs(t, s, append(jobs, r, o)...)
	for _, c := range []struct {
		tenant string
		limit  int
		want   []string
	}{
		{"", 10, []string{"c", "m", "x"}}, // "": no fair key
		{"", 2, []string{"c", "m"}},
		{"acme", 10, []string{"c", "m"}},
		{"initech", 10, nil},
	} {
		got := read(t, s, func(tx storage.Tx) ([]string, error) { return tx.FairKeys(c.tenant, "report", c.limit) })
		if !slices.Equal(got, c.want) {
			t.Errorf("FairKeys(%q, report, %d) = %q, want %q", c.tenant, c.limit, got, c.want)
		}
	}
}

// testQueuedJobsWhere: QueuedJobs' order, narrowed to one fair key and
// leaving out concurrency keys.
func testQueuedJobsWhere(t *testing.T, s storage.Store) {
	mk := func(id, fair, conc string, prio int) *errand.Job {
		j := Job(id)
		j.FairKey, j.ConcurrencyKey, j.Priority = fair, conc, prio
		return j
	}
	insertJobs(t, s, mk("job_1", "acme", "c1", 0), mk("job_2", "acme", "c2", 5), mk("job_3", "globex", "c1", 9),
		mk("job_4", "acme", "c3", 0), mk("job_5", "globex", "c2", 0))
	acme := "acme"
	for _, c := range []struct {
		p    storage.QueuedParams
		want []string
	}{
		{storage.QueuedParams{Operation: "report", Limit: 10}, []string{"job_3", "job_2", "job_1", "job_4", "job_5"}},
		{storage.QueuedParams{Operation: "report", Limit: 10, FairKey: &acme}, []string{"job_2", "job_1", "job_4"}},
		{storage.QueuedParams{Operation: "report", Limit: 2, FairKey: &acme}, []string{"job_2", "job_1"}},
		{storage.QueuedParams{Operation: "report", Limit: 10, SkipKeys: []string{"c1", "c3"}}, []string{"job_2", "job_5"}},
		{storage.QueuedParams{Operation: "report", Limit: 10, FairKey: &acme, SkipKeys: []string{"c2"}}, []string{"job_1", "job_4"}},
		{storage.QueuedParams{Tenant: "globex", Operation: "report", Limit: 10}, []string{}},
		{storage.QueuedParams{Operation: "report", Limit: 10, MaxBytes: 1}, []string{"job_3"}},
	} {
		got := read(t, s, func(tx storage.Tx) ([]*errand.Job, error) { return tx.QueuedJobsWhere(c.p) })
		if !slices.Equal(jobIDs(got), c.want) {
			t.Errorf("QueuedJobsWhere(%+v) = %v, want %v", c.p, jobIDs(got), c.want)
		}
	}
	got := read(t, s, func(tx storage.Tx) ([]*errand.Job, error) {
		return tx.QueuedJobsWhere(storage.QueuedParams{Operation: "report", Limit: 1, FairKey: &acme})
	})
	if len(got) != 1 || got[0].FairKey != "acme" || got[0].ConcurrencyKey != "c2" {
		t.Errorf("QueuedJobsWhere read back %+v, want job_2 with its fair and concurrency keys", got)
	}
}

// testRunningCounts: the running jobs of every operation that has any.
func testRunningCounts(t *testing.T, s storage.Store) {
	a, b, c, q := Job("job_a"), Job("job_b"), Job("job_c"), Job("job_q")
	a.Status, b.Status, c.Status, c.Operation = errand.StatusRunning, errand.StatusRunning, errand.StatusRunning, "other"
	insertJobs(t, s, a, b, c, q)
	got, err := s.RunningCounts(ctx)
	if want := map[string]int{"report": 2, "other": 1}; err != nil || !maps.Equal(got, want) {
		t.Errorf("RunningCounts = %v, %v; want %v", got, err, want)
	}
}

// testQueuedHeads: several fair keys' heads in one call, each in run order,
// up to its quota, leaving out concurrency keys, within a byte budget; and
// concurrent claimers never share a row.
func testQueuedHeads(t *testing.T, s storage.Store) {
	mk := func(id, fair, conc string, prio int) *errand.Job {
		j := Job(id)
		j.FairKey, j.ConcurrencyKey, j.Priority = fair, conc, prio
		return j
	}
	insertJobs(t, s, mk("job_a1", "a", "x", 0), mk("job_a2", "a", "y", 5), mk("job_a3", "a", "x", 0),
		mk("job_b1", "b", "x", 0), mk("job_b2", "b", "y", 1), mk("job_c1", "c", "x", 0))
	ids := func(js []*errand.Job) []string {
		out := jobIDs(js)
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		p      storage.QueuedParams
		quotas []storage.KeyQuota
		want   []string
	}{
		{storage.QueuedParams{Operation: "report"}, []storage.KeyQuota{{Key: "a", N: 2}, {Key: "b", N: 1}}, []string{"job_a1", "job_a2", "job_b2"}},
		{storage.QueuedParams{Operation: "report"}, []storage.KeyQuota{{Key: "c", N: 5}, {Key: "z", N: 1}}, []string{"job_c1"}},
		{storage.QueuedParams{Operation: "report", SkipKeys: []string{"y"}}, []storage.KeyQuota{{Key: "a", N: 1}, {Key: "b", N: 1}}, []string{"job_a1", "job_b1"}},
		{storage.QueuedParams{Operation: "report", MaxBytes: 1}, []storage.KeyQuota{{Key: "a", N: 3}}, []string{"job_a2"}},
		{storage.QueuedParams{Operation: "other"}, []storage.KeyQuota{{Key: "a", N: 3}}, []string{}},
	} {
		got := read(t, s, func(tx storage.Tx) ([]*errand.Job, error) { return tx.QueuedHeads(c.p, c.quotas) })
		if !slices.Equal(ids(got), c.want) {
			t.Errorf("QueuedHeads(%+v, %v) = %v, want %v", c.p, c.quotas, ids(got), c.want)
		}
	}
	claimed := claimConcurrently(t, s, func(tx storage.Tx) ([]string, error) {
		js, err := tx.QueuedHeads(storage.QueuedParams{Operation: "report"}, []storage.KeyQuota{{Key: "a", N: 1}, {Key: "b", N: 1}, {Key: "c", N: 1}})
		return moveJobs(tx, js, errand.StatusRunning, err)
	})
	if len(claimed) != 6 {
		t.Errorf("concurrent QueuedHeads claimed %d jobs between them, want 6", len(claimed))
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}
}
