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

// telemetryTests pin what metrics, traces and usage analytics read and write:
// the queue's gauges, usage rows, and the trace context jobs and deliveries
// keep.
var telemetryTests = map[string]func(*testing.T, storage.Store){
	"QueueStats":       testQueueStats,
	"TenantQueueStats": testTenantQueueStats,
	"Usage":            testUsage,
	"UsageExpire":      testUsageExpire,
	"TraceParents":     testTraceParents,
}

// testQueueStats: queued jobs counted per operation with the earliest run_at,
// running ones counted; scheduled and finished ones are not.
func testQueueStats(t *testing.T, s storage.Store) {
	if st, err := s.QueueStats(ctx); err != nil || len(st) != 0 {
		t.Fatalf("QueueStats of an empty store = %v, %v; want none", st, err)
	}
	var jobs []*errand.Job
	add := func(id, op string, status errand.Status, runAt time.Time) {
		j := Job(id)
		j.Operation, j.Status, j.RunAt = op, status, runAt
		if status == errand.StatusRunning {
			exp := T0.Add(time.Minute)
			j.StartedAt, j.LeaseExpiresAt, j.LeaseToken = &T0, &exp, "tok"
		}
		jobs = append(jobs, j)
	}
	add("job_1", "report", errand.StatusQueued, T0.Add(-time.Minute))
	add("job_2", "report", errand.StatusQueued, T0.Add(-3*time.Minute))
	add("job_3", "report", errand.StatusRunning, T0)
	add("job_4", "email", errand.StatusQueued, T0)
	add("job_5", "email", errand.StatusScheduled, T0.Add(time.Hour))
	add("job_6", "email", errand.StatusSucceeded, T0)
	add("job_7", "pdf", errand.StatusRunning, T0)
	insertJobs(t, s, jobs...)
	got, err := s.QueueStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.QueueStat{
		{Operation: "email", Status: errand.StatusQueued, Count: 1, Oldest: T0},
		{Operation: "pdf", Status: errand.StatusRunning, Count: 1},
		{Operation: "report", Status: errand.StatusQueued, Count: 2, Oldest: T0.Add(-3 * time.Minute)},
		{Operation: "report", Status: errand.StatusRunning, Count: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("QueueStats = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Operation != want[i].Operation || got[i].Status != want[i].Status || got[i].Count != want[i].Count ||
			!got[i].Oldest.Equal(want[i].Oldest) {
			t.Errorf("QueueStats[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// testTenantQueueStats: only the tenant's queued and running jobs are counted.
func testTenantQueueStats(t *testing.T, s storage.Store) {
	var jobs []*errand.Job
	for i, tenant := range []string{"acme", "acme", "globex", "globex", "globex"} {
		j := Job(fmt.Sprintf("job_%d", i+1))
		j.Tenant, j.RunAt = tenant, T0.Add(time.Duration(-i)*time.Minute)
		jobs = append(jobs, j)
	}
	insertJobs(t, s, jobs...)
	for tenant, want := range map[string]storage.QueueStat{
		"acme":   {Operation: "report", Status: errand.StatusQueued, Count: 2, Oldest: T0.Add(-time.Minute)},
		"globex": {Operation: "report", Status: errand.StatusQueued, Count: 3, Oldest: T0.Add(-4 * time.Minute)},
	} {
		got, err := s.TenantQueueStats(ctx, tenant)
		if err != nil || len(got) != 1 || got[0].Count != want.Count || !got[0].Oldest.Equal(want.Oldest) {
			t.Errorf("TenantQueueStats(%q) = %+v, %v; want [%+v]", tenant, got, err, want)
		}
	}
	if got, err := s.TenantQueueStats(ctx, "initech"); err != nil || len(got) != 0 {
		t.Errorf("TenantQueueStats of a tenant without jobs = %+v, %v; want none", got, err)
	}
}

// usageRow is a row of tenant and operation in the minute bucket at T0+m.
func usageRow(tenant, op, node string, m int, submitted int64) storage.UsageRow {
	return storage.UsageRow{Tenant: tenant, Operation: op, Step: time.Minute, Bucket: T0.Add(time.Duration(m) * time.Minute),
		Node: node, Submitted: submitted, Succeeded: submitted - 1, Failed: 1, Canceled: 2, Events: 3, Deliveries: 4,
		ArtifactBytes: 5, RunTime: []byte{1, 2}, QueueWait: []byte{3}}
}

// testUsage: rows are written whole per (tenant, operation, step, bucket,
// node) — a second write replaces the first — and read per tenant, step,
// range and operation, ordered by bucket, operation and node.
func testUsage(t *testing.T, s storage.Store) {
	tx(t, s, func(tx storage.Tx) error {
		return tx.PutUsage([]storage.UsageRow{
			usageRow("acme", "report", "n1", 0, 10), usageRow("acme", "report", "n2", 0, 7),
			usageRow("acme", "", "n1", 0, 0), usageRow("acme", "report", "n1", 1, 3),
			usageRow("acme", "report", "n1", 5, 1), usageRow("globex", "report", "n1", 0, 99),
			{Tenant: "acme", Operation: "report", Step: time.Hour, Bucket: T0, Node: "n1", Submitted: 13},
		})
	})
	// The node writes its running totals again: the row is replaced, not added to.
	again := usageRow("acme", "report", "n1", 0, 12)
	again.RunTime, again.QueueWait = nil, nil
	tx(t, s, func(tx storage.Tx) error { return tx.PutUsage([]storage.UsageRow{again}) })

	rows, err := s.ListUsage(ctx, storage.ListUsageParams{Tenant: "acme", Step: time.Minute, From: T0,
		To: T0.Add(5 * time.Minute), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s/%s/%s/%d", r.Bucket.Sub(T0), r.Operation, r.Node, r.Submitted))
	}
	want := []string{"0s//n1/0", "0s/report/n1/12", "0s/report/n2/7", "1m0s/report/n1/3"}
	if !slices.Equal(got, want) {
		t.Errorf("ListUsage(acme, minute, [T0, T0+5m)) = %v, want %v", got, want)
	}
	if len(rows) == 4 {
		r := rows[2]
		if r.Tenant != "acme" || r.Step != time.Minute || r.Succeeded != 6 || r.Failed != 1 || r.Canceled != 2 ||
			r.Events != 3 || r.Deliveries != 4 || r.ArtifactBytes != 5 || !slices.Equal(r.RunTime, []byte{1, 2}) ||
			!slices.Equal(r.QueueWait, []byte{3}) {
			t.Errorf("ListUsage row = %+v, want every column as written", r)
		}
		if rows[1].RunTime != nil || rows[1].QueueWait != nil {
			t.Errorf("rewritten row's histograms = %v, %v; want none (NULL)", rows[1].RunTime, rows[1].QueueWait)
		}
	}
	rows, err = s.ListUsage(ctx, storage.ListUsageParams{Tenant: "acme", Operation: "report", Step: time.Minute,
		From: T0.Add(time.Minute), To: T0.Add(time.Hour), Limit: 100})
	if err != nil || len(rows) != 2 || rows[0].Submitted != 3 || rows[1].Submitted != 1 {
		t.Errorf("ListUsage(acme, report, [T0+1m, T0+1h)) = %+v, %v; want the rows of minutes 1 and 5", rows, err)
	}
	rows, err = s.ListUsage(ctx, storage.ListUsageParams{Tenant: "acme", Step: time.Hour, From: T0, To: T0.Add(time.Hour), Limit: 100})
	if err != nil || len(rows) != 1 || rows[0].Submitted != 13 || rows[0].Step != time.Hour {
		t.Errorf("ListUsage(acme, hour) = %+v, %v; want the one hour row", rows, err)
	}
	rows, err = s.ListUsage(ctx, storage.ListUsageParams{Tenant: "acme", Step: time.Minute, From: T0, To: T0.Add(time.Hour), Limit: 2})
	if err != nil || len(rows) != 2 {
		t.Errorf("ListUsage(limit 2) = %d rows, %v", len(rows), err)
	}
}

// testUsageExpire: a step's buckets before the cut are deleted, oldest
// first, up to the limit; the other step's are kept.
func testUsageExpire(t *testing.T, s storage.Store) {
	tx(t, s, func(tx storage.Tx) error {
		rows := []storage.UsageRow{{Tenant: "acme", Operation: "report", Step: time.Hour, Bucket: T0.Add(-time.Hour), Node: "n1"}}
		for m := range 5 {
			rows = append(rows, usageRow("acme", "report", "n1", m, 1), usageRow("globex", "", "n2", m, 1))
		}
		return tx.PutUsage(rows)
	})
	n := read(t, s, func(tx storage.Tx) (int, error) { return tx.ExpireUsage(time.Minute, T0.Add(3*time.Minute), 4) })
	if n != 4 {
		t.Fatalf("ExpireUsage(limit 4) = %d, want 4", n)
	}
	n = read(t, s, func(tx storage.Tx) (int, error) { return tx.ExpireUsage(time.Minute, T0.Add(3*time.Minute), 100) })
	if n != 2 {
		t.Fatalf("ExpireUsage again = %d, want the 2 left before the cut", n)
	}
	for _, tenant := range []string{"acme", "globex"} {
		rows, err := s.ListUsage(ctx, storage.ListUsageParams{Tenant: tenant, Step: time.Minute, From: T0.Add(-time.Hour),
			To: T0.Add(time.Hour), Limit: 100})
		if err != nil || len(rows) != 2 || !rows[0].Bucket.Equal(T0.Add(3*time.Minute)) {
			t.Errorf("%s's minute rows after expiry = %+v, %v; want minutes 3 and 4", tenant, rows, err)
		}
	}
	rows, err := s.ListUsage(ctx, storage.ListUsageParams{Tenant: "acme", Step: time.Hour, From: T0.Add(-time.Hour), To: T0, Limit: 10})
	if err != nil || len(rows) != 1 {
		t.Errorf("hour rows after the minutes expired = %+v, %v; want kept", rows, err)
	}
}

// testTraceParents: a job's and a delivery's trace context read back as
// stored, and as empty when there was none.
func testTraceParents(t *testing.T, s storage.Store) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	a, b := Job("job_a"), Job("job_b")
	a.TraceParent = tp
	da := Delivery("msg_a", "", T0, T0.Add(time.Hour))
	da.TraceParent = tp
	db := Delivery("msg_b", "", T0, T0.Add(time.Hour))
	tx(t, s, func(tx storage.Tx) error {
		for _, j := range []*errand.Job{a, b} {
			if err := tx.InsertJob(j); err != nil {
				return err
			}
		}
		for _, d := range []*errand.Delivery{da, db} {
			if err := tx.InsertDelivery(d); err != nil {
				return err
			}
		}
		return nil
	})
	for id, want := range map[string]string{"job_a": tp, "job_b": ""} {
		j, err := s.GetJob(ctx, "acme", id)
		if err != nil || j.TraceParent != want {
			t.Errorf("GetJob(%s).TraceParent = %q, %v; want %q", id, j.TraceParent, err, want)
		}
	}
	for id, want := range map[string]string{"msg_a": tp, "msg_b": ""} {
		d, err := s.GetDelivery(ctx, "a", id)
		if err != nil || d.TraceParent != want {
			t.Errorf("GetDelivery(%s).TraceParent = %q, %v; want %q", id, d.TraceParent, err, want)
		}
	}
}

// ObserverRecorder is a storage.Observer that keeps what it hears.
type ObserverRecorder struct {
	mu       sync.Mutex
	commits  []storage.CommitStats
	failures []error
}

// Committed records a copy of c.
func (o *ObserverRecorder) Committed(c *storage.CommitStats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.commits = append(o.commits, storage.CommitStats{Duration: c.Duration, Calls: c.Calls, Events: slices.Clone(c.Events)})
}

// Failed records err.
func (o *ObserverRecorder) Failed(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures = append(o.failures, err)
}

// Commits returns every commit heard so far.
func (o *ObserverRecorder) Commits() []storage.CommitStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.commits)
}

// Observe checks a driver's storage.Observer: open returns a new, empty store
// that reports to o. Concurrent calls (grouped into shared transactions), some
// failing after their writes reached the database (a read sends them), some
// before: the observer hears each committed event once, as the same value
// the caller appended (its Job with it), none of a failed call's, and counts
// every committed call.
func Observe(t *testing.T, open func(t *testing.T, o storage.Observer) storage.Store) {
	o := &ObserverRecorder{}
	s := open(t, o)
	var mu sync.Mutex
	committed := map[*errand.Event]bool{}
	calls := 0
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 15 {
				j := Job(fmt.Sprintf("job_%d_%02d", g, i))
				e := Event(j.ID, `{}`)
				e.Job = j
				err := s.WithTx(ctx, func(tx storage.Tx) error {
					if err := tx.InsertJob(j); err != nil {
						return err
					}
					if err := tx.InsertEvent(e); err != nil {
						return err
					}
					if i%3 == 1 {
						if _, err := tx.GetSetting("nothing"); !errors.Is(err, storage.ErrNotFound) {
							return err // the read sent the writes before it
						}
					}
					if i%3 != 0 && i%2 == 1 {
						return errors.New("roll back")
					}
					return nil
				})
				mu.Lock()
				if err == nil {
					committed[e] = true
					calls++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	heard, sumCalls := map[*errand.Event]int{}, 0
	for _, c := range o.Commits() {
		sumCalls += c.Calls
		if c.Duration <= 0 || c.Calls < 1 {
			t.Errorf("a commit of %d calls took %v: want at least one call, a positive time", c.Calls, c.Duration)
		}
		for _, e := range c.Events {
			heard[e]++
			if e.Job == nil || e.Job.ID != e.Stream {
				t.Errorf("event of %s heard with job %v, want its job", e.Stream, e.Job)
			}
		}
	}
	for e := range committed {
		if heard[e] != 1 {
			t.Errorf("committed event of %s heard %d times, want once", e.Stream, heard[e])
		}
	}
	for e, n := range heard {
		if !committed[e] {
			t.Errorf("event of %s (a failed call) heard %d times, want never", e.Stream, n)
		}
	}
	if sumCalls < calls {
		t.Errorf("commits carried %d calls in all, want at least the %d that committed", sumCalls, calls)
	}
}
