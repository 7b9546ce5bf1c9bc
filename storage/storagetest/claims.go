package storagetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// claimTests pin the methods that claim rows for a transaction: what they
// select, in which order, and that concurrent claimers never share a row.
var claimTests = map[string]func(*testing.T, storage.Store){
	"QueuedJobs":        testQueuedJobs,
	"ExpiredLeases":     testExpiredLeases,
	"DueScheduled":      testDueScheduled,
	"ExpiredJobs":       testExpiredJobs,
	"ClaimsNeverShared": testClaimsNeverShared,
}

// testQueuedJobs: queued jobs of one operation, of one tenant or every
// tenant's, highest priority first, then earliest run_at, then lowest id;
// up to limit.
func testQueuedJobs(t *testing.T, s storage.Store) {
	mk := func(id, tenant string, prio int, runAt time.Duration, st errand.Status) *errand.Job {
		j := Job(id)
		j.Tenant, j.Priority, j.RunAt, j.Status = tenant, prio, T0.Add(runAt), st
		return j
	}
	other := mk("job_o", "acme", 99, 0, errand.StatusQueued)
	other.Operation = "other"
	insertJobs(t, s,
		mk("job_b", "acme", 0, time.Second, errand.StatusQueued), mk("job_a", "acme", 0, time.Second, errand.StatusQueued),
		mk("job_c", "acme", 0, 0, errand.StatusQueued), mk("job_d", "acme", 5, 2*time.Second, errand.StatusQueued),
		mk("job_e", "acme", -5, 0, errand.StatusQueued), mk("job_g", "globex", 1, 0, errand.StatusQueued),
		mk("job_r", "acme", 50, 0, errand.StatusRunning), mk("job_s", "acme", 50, 0, errand.StatusScheduled), other)
	for _, c := range []struct {
		tenant string
		limit  int
		want   []string
	}{
		{"acme", 10, []string{"job_d", "job_c", "job_a", "job_b", "job_e"}},
		{"acme", 2, []string{"job_d", "job_c"}},
		{"globex", 10, []string{"job_g"}},
		{"initech", 10, []string{}},
		{"", 10, []string{"job_d", "job_g", "job_c", "job_a", "job_b", "job_e"}},
	} {
		got := read(t, s, func(tx storage.Tx) ([]*errand.Job, error) { return tx.QueuedJobs(c.tenant, "report", c.limit, 0) })
		if !slices.Equal(jobIDs(got), c.want) {
			t.Errorf("QueuedJobs(%q, report, %d) = %v, want %v", c.tenant, c.limit, jobIDs(got), c.want)
		}
	}
}

// testExpiredLeases: running jobs whose lease ended before now (not at it),
// earliest first, in every tenant and operation.
func testExpiredLeases(t *testing.T, s storage.Store) {
	mk := func(id string, ends time.Duration, st errand.Status) *errand.Job {
		j := Job(id)
		exp := T0.Add(ends)
		j.Status, j.LeaseExpiresAt = st, &exp
		return j
	}
	g := mk("job_g", -time.Minute, errand.StatusRunning)
	g.Tenant, g.Operation = "globex", "other"
	insertJobs(t, s, mk("job_1", -time.Second, errand.StatusRunning), g, mk("job_now", 0, errand.StatusRunning),
		mk("job_later", time.Second, errand.StatusRunning), mk("job_q", -time.Hour, errand.StatusQueued))
	for limit, want := range map[int][]string{10: {"job_g", "job_1"}, 1: {"job_g"}} {
		got := read(t, s, func(tx storage.Tx) ([]*errand.Job, error) { return tx.ExpiredLeases(T0, limit) })
		if !slices.Equal(jobIDs(got), want) {
			t.Errorf("ExpiredLeases(T0, %d) = %v, want %v", limit, jobIDs(got), want)
		}
	}
}

// testDueScheduled: scheduled jobs whose run_at is at or before now, earliest
// first.
func testDueScheduled(t *testing.T, s storage.Store) {
	mk := func(id string, at time.Duration, st errand.Status) *errand.Job {
		j := Job(id)
		j.Status, j.RunAt = st, T0.Add(at)
		return j
	}
	insertJobs(t, s, mk("job_now", 0, errand.StatusScheduled), mk("job_past", -time.Minute, errand.StatusScheduled),
		mk("job_later", time.Millisecond, errand.StatusScheduled), mk("job_q", -time.Hour, errand.StatusQueued))
	for limit, want := range map[int][]string{10: {"job_past", "job_now"}, 1: {"job_past"}} {
		got := read(t, s, func(tx storage.Tx) ([]*errand.Job, error) { return tx.DueScheduled(T0, limit) })
		if !slices.Equal(jobIDs(got), want) {
			t.Errorf("DueScheduled(T0, %d) = %v, want %v", limit, jobIDs(got), want)
		}
	}
}

// testExpiredJobs: the ids of jobs whose expires_at is before now, earliest
// first; jobs without one never expire.
func testExpiredJobs(t *testing.T, s storage.Store) {
	mk := func(id string, at *time.Duration) *errand.Job {
		j := Job(id)
		j.Status = errand.StatusSucceeded
		if at != nil {
			exp := T0.Add(*at)
			j.ExpiresAt = &exp
		}
		return j
	}
	d := func(x time.Duration) *time.Duration { return &x }
	insertJobs(t, s, mk("job_1", d(-time.Second)), mk("job_2", d(-time.Hour)), mk("job_now", d(0)), mk("job_never", nil))
	for limit, want := range map[int][]string{10: {"job_2", "job_1"}, 1: {"job_2"}} {
		got := read(t, s, func(tx storage.Tx) ([]string, error) { return tx.ExpiredJobs(T0, limit) })
		if !slices.Equal(got, want) {
			t.Errorf("ExpiredJobs(T0, %d) = %v, want %v", limit, got, want)
		}
	}
}

// testClaimsNeverShared: claimers running at once, each claiming up to 3 rows
// and moving them out of the claimed state in its transaction (as the queue,
// the reaper and the deliverer do), never claim a row twice, and between them
// claim every row.
func testClaimsNeverShared(t *testing.T, s storage.Store) {
	const n = 90
	var jobs []*errand.Job
	var deliveries []*errand.Delivery
	for i := range n {
		q, r := Job(fmt.Sprintf("job_q%02d", i)), Job(fmt.Sprintf("job_r%02d", i))
		q.Tenant = []string{"acme", "globex"}[i%2]
		exp := T0.Add(-time.Minute)
		r.Status, r.LeaseExpiresAt = errand.StatusRunning, &exp
		jobs = append(jobs, q, r)
		deliveries = append(deliveries, Delivery(fmt.Sprintf("msg_%02d", i), "ep_1", T0, T0))
	}
	insertJobs(t, s, jobs...)
	tx(t, s, func(tx storage.Tx) error {
		for _, d := range deliveries {
			if err := tx.InsertDelivery(d); err != nil {
				return err
			}
		}
		return nil
	})
	claimers := map[string]func(tx storage.Tx) ([]string, error){
		"QueuedJobs": func(tx storage.Tx) ([]string, error) {
			js, err := tx.QueuedJobs("", "report", 3, 0)
			return moveJobs(tx, js, errand.StatusRunning, err)
		},
		"ExpiredLeases": func(tx storage.Tx) ([]string, error) {
			js, err := tx.ExpiredLeases(T0, 3)
			return moveJobs(tx, js, errand.StatusScheduled, err)
		},
		"DueDeliveries": func(tx storage.Tx) ([]string, error) {
			ds, err := tx.DueDeliveries(T0, 3)
			var ids []string
			for _, d := range ds {
				if err == nil {
					d.Status, d.AttemptCount = errand.DeliverySucceeded, 1
					err = tx.UpdateDelivery(d)
				}
				ids = append(ids, d.ID)
			}
			return ids, err
		},
	}
	for name, claim := range claimers {
		claimed := claimConcurrently(t, s, claim)
		if len(claimed) != n {
			t.Errorf("%s: claimers took %d rows between them, want %d", name, len(claimed), n)
		}
		for id, times := range claimed {
			if times != 1 {
				t.Errorf("%s: %s was claimed %d times", name, id, times)
			}
		}
	}
}

// moveJobs sets the claimed jobs' status and returns their ids.
func moveJobs(tx storage.Tx, js []*errand.Job, to errand.Status, err error) ([]string, error) {
	var ids []string
	for _, j := range js {
		if err == nil {
			j.Status = to
			err = tx.UpdateJob(j)
		}
		ids = append(ids, j.ID)
	}
	return ids, err
}

// claimConcurrently runs claim from 8 goroutines until none finds anything
// more, and counts how often each row was claimed by a committed transaction.
func claimConcurrently(t *testing.T, s storage.Store, claim func(storage.Tx) ([]string, error)) map[string]int {
	t.Helper()
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for empty := 0; empty < 3; {
				var ids []string
				err := s.WithTx(ctx, func(tx storage.Tx) error {
					var err error
					ids, err = claim(tx)
					return err
				})
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				if len(ids) == 0 {
					empty++ // others may hold the rest for a moment
					time.Sleep(time.Millisecond)
					continue
				}
				mu.Lock()
				for _, id := range ids {
					claimed[id]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return claimed
}

// SkipLocked checks, on a driver whose transactions run concurrently with
// row locks (PostgreSQL), that each claiming method skips the rows another
// open transaction has claimed, without waiting for it: a transaction claims
// and holds its rows while a second one claims. open returns a new, empty
// store (closed by the test's cleanup) whose WithTx runs at least two
// transactions at once.
func SkipLocked(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	mk := func(id string, st errand.Status) *errand.Job {
		j := Job(id)
		exp := T0.Add(-time.Minute)
		j.Status, j.RunAt, j.LeaseExpiresAt = st, T0.Add(-time.Minute), &exp
		if st == errand.StatusSucceeded {
			j.ExpiresAt = &exp
		}
		return j
	}
	var jobs []*errand.Job
	for _, st := range []errand.Status{errand.StatusQueued, errand.StatusRunning, errand.StatusScheduled, errand.StatusSucceeded} {
		jobs = append(jobs, mk("job_"+string(st)+"1", st), mk("job_"+string(st)+"2", st))
	}
	insertJobs(t, s, jobs...)
	tx(t, s, func(tx storage.Tx) error {
		for _, d := range []*errand.Delivery{Delivery("msg_1", "ep_1", T0, T0), Delivery("msg_2", "ep_1", T0, T0)} {
			if err := tx.InsertDelivery(d); err != nil {
				return err
			}
		}
		return nil
	})
	ids := func(js []*errand.Job, err error) ([]string, error) { return jobIDs(js), err }
	for name, claim := range map[string]func(storage.Tx) ([]string, error){
		"QueuedJobs":    func(tx storage.Tx) ([]string, error) { return ids(tx.QueuedJobs("", "report", 1, 0)) },
		"ExpiredLeases": func(tx storage.Tx) ([]string, error) { return ids(tx.ExpiredLeases(T0, 1)) },
		"DueScheduled":  func(tx storage.Tx) ([]string, error) { return ids(tx.DueScheduled(T0, 1)) },
		"ExpiredJobs":   func(tx storage.Tx) ([]string, error) { return tx.ExpiredJobs(T0, 1) },
		"DueDeliveries": func(tx storage.Tx) ([]string, error) {
			ds, err := tx.DueDeliveries(T0, 1)
			var out []string
			for _, d := range ds {
				out = append(out, d.ID)
			}
			return out, err
		},
		"EndpointDeliveries": func(tx storage.Tx) ([]string, error) {
			ds, err := tx.EndpointDeliveries("a", "ep_1", errand.DeliveryPending, T0, 1)
			var out []string
			for _, d := range ds {
				out = append(out, d.ID)
			}
			return out, err
		},
	} {
		t.Run(name, func(t *testing.T) { holdAndClaim(t, s, claim) })
	}
}

// holdAndClaim claims a row in one transaction and, while it is open, a row
// in a second: the second must get the other row, at once.
func holdAndClaim(t *testing.T, s storage.Store, claim func(storage.Tx) ([]string, error)) {
	held, release := make(chan []string, 1), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.WithTx(ctx, func(tx storage.Tx) error {
			ids, err := claim(tx)
			held <- ids
			if err == nil {
				<-release // holds its locks until the second claim is done
			}
			return err
		})
	}()
	var a []string
	select {
	case a = <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the first claim did not return")
	}
	type result struct {
		ids []string
		err error
	}
	second := make(chan result, 1)
	go func() {
		b, err := readErr(s, claim)
		second <- result{b, err}
	}()
	var b result
	select {
	case b = <-second:
	case <-time.After(30 * time.Second):
		close(release)
		<-second
		<-first
		t.Fatal("the second claim waited for the first transaction's locks (no SKIP LOCKED?)")
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if b.err != nil {
		t.Fatalf("second claim: %v", b.err)
	}
	if len(a) != 1 || len(b.ids) != 1 || a[0] == b.ids[0] {
		t.Errorf("while one transaction held %v, another claimed %v; want the other row", a, b.ids)
	}
}

// readErr is read without failing the test (for other goroutines).
func readErr[T any](s storage.Store, fn func(storage.Tx) (T, error)) (T, error) {
	var out T
	err := s.WithTx(ctx, func(tx storage.Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	return out, err
}
