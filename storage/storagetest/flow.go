package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// flowTests pin admission's storage (#15): rate-limit buckets, queue
// counts and positions, unique jobs.
var flowTests = map[string]func(*testing.T, storage.Store){
	"TakeTokens":             testTakeTokens,
	"TakeTokensConcurrently": testTakeTokensConcurrently,
	"CountQueued":            testCountQueued,
	"QueueAhead":             testQueueAhead,
	"UniqueJob":              testUniqueJob,
	"UniqueJobConcurrently":  testUniqueJobConcurrently,
	"Started":                testStarted,
}

// take takes n tokens from key at T0+at (5 a second, bursts of 5).
func take(t *testing.T, s storage.Store, key string, n int, at time.Duration) storage.Take {
	t.Helper()
	got, err := s.TakeTokens(ctx, storage.TakeParams{Key: key, N: n, Interval: 200 * time.Millisecond, Burst: 5, Now: T0.Add(at)})
	if err != nil {
		t.Fatalf("TakeTokens(%s, %d, +%s): %v", key, n, at, err)
	}
	return got
}

// testTakeTokens: a full bucket gives its burst at once, then one token per
// interval; a take larger than the bucket never fits; keys are apart; the
// TAT says when the bucket is full again.
func testTakeTokens(t *testing.T, s storage.Store) {
	for i := range 5 {
		if got := take(t, s, "a", 1, 0); !got.Admitted || !got.TAT.Equal(T0.Add(time.Duration(i+1)*200*time.Millisecond)) {
			t.Fatalf("take %d = %+v, want admitted with TAT +%dms", i+1, got, (i+1)*200)
		}
	}
	if got := take(t, s, "a", 1, 0); got.Admitted || !got.TAT.Equal(T0.Add(time.Second)) {
		t.Errorf("6th take = %+v, want refused with TAT +1s", got)
	}
	if got := take(t, s, "a", 1, 199*time.Millisecond); got.Admitted {
		t.Errorf("take at +199ms = %+v, want refused", got)
	}
	if got := take(t, s, "a", 1, 200*time.Millisecond); !got.Admitted {
		t.Errorf("take at +200ms = %+v, want admitted (one token came back)", got)
	}
	if got := take(t, s, "a", 2, 600*time.Millisecond); !got.Admitted {
		t.Errorf("take of 2 at +600ms = %+v, want admitted", got)
	}
	if got := take(t, s, "b", 6, 0); got.Admitted {
		t.Errorf("take of 6 from a bucket of 5 = %+v, want refused", got)
	}
	if got := take(t, s, "b", 5, 0); !got.Admitted {
		t.Errorf("take of 5 from another key = %+v, want admitted", got)
	}
	if got := take(t, s, "a", 5, 3*time.Second); !got.Admitted || !got.TAT.Equal(T0.Add(4*time.Second)) {
		t.Errorf("take of 5 once full again = %+v, want admitted with TAT +4s", got)
	}
}

// testTakeTokensConcurrently: 40 takes at once from a bucket of 5 admit 5.
func testTakeTokensConcurrently(t *testing.T, s storage.Store) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 40 {
		wg.Go(func() {
			got, err := s.TakeTokens(ctx, storage.TakeParams{Key: "hot", N: 1, Interval: time.Hour, Burst: 5, Now: T0})
			if err != nil {
				t.Errorf("TakeTokens: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if got.Admitted {
				admitted++
			}
		})
	}
	wg.Wait()
	if admitted != 5 {
		t.Errorf("40 concurrent takes from a bucket of 5 admitted %d, want 5", admitted)
	}
}

// testCountQueued: only queued jobs of the operation count, up to the
// limit; with a key only those with that queue key; QueueDepth counts all.
func testCountQueued(t *testing.T, s storage.Store) {
	var jobs []*errand.Job
	for i := range 6 {
		j := Job(fmt.Sprintf("job_%d", i))
		j.QueueKey = []string{"k1", "k2", ""}[i%3]
		jobs = append(jobs, j)
	}
	jobs[4].Status = errand.StatusRunning // queue key k2, not queued
	other := Job("job_other")
	other.Operation = "other"
	insertJobs(t, s, append(jobs, other)...)
	for _, c := range []struct {
		key         string
		limit, want int
	}{{"", 100, 5}, {"", 3, 3}, {"k1", 100, 2}, {"k2", 100, 1}, {"k3", 100, 0}} {
		n := read(t, s, func(tx storage.Tx) (int, error) { return tx.CountQueued("report", c.key, c.limit) })
		if n != c.want {
			t.Errorf("CountQueued(report, %q, %d) = %d, want %d", c.key, c.limit, n, c.want)
		}
	}
	if n, err := s.QueueDepth(ctx, "report"); err != nil || n != 5 {
		t.Errorf("QueueDepth(report) = %d, %v; want 5", n, err)
	}
	if j, err := s.GetJob(ctx, "acme", "job_0"); err != nil || j.QueueKey != "k1" {
		t.Errorf("GetJob(job_0).QueueKey = %q, %v; want k1", j.QueueKey, err)
	}
}

// testQueueAhead: the jobs ahead are those QueuedJobs hands out first.
func testQueueAhead(t *testing.T, s storage.Store) {
	mk := func(id string, prio int, at time.Duration) *errand.Job {
		j := Job(id)
		j.Priority, j.RunAt = prio, T0.Add(at)
		return j
	}
	jobs := []*errand.Job{mk("job_a", 0, 0), mk("job_b", 0, 0), mk("job_c", 0, -time.Second), mk("job_d", 5, time.Second), mk("job_e", -1, 0)}
	insertJobs(t, s, jobs...)
	order := read(t, s, func(tx storage.Tx) ([]*errand.Job, error) { return tx.QueuedJobs("", "report", 10, 0) })
	for i, j := range order {
		if n, err := s.QueueAhead(ctx, j, 100); err != nil || n != i {
			t.Errorf("QueueAhead(%s) = %d, %v; want %d (its place in QueuedJobs)", j.ID, n, err, i)
		}
		if n, err := s.QueueAhead(ctx, j, 2); err != nil || n != min(i, 2) {
			t.Errorf("QueueAhead(%s, limit 2) = %d, %v; want %d", j.ID, n, err, min(i, 2))
		}
	}
	if len(order) != len(jobs) {
		t.Fatalf("QueuedJobs = %d jobs, want %d", len(order), len(jobs))
	}
}

// testUniqueJob: a key is held by one job until replaced; a second insert
// of a held key fails.
func testUniqueJob(t *testing.T, s storage.Store) {
	_, err := readErr(s, func(tx storage.Tx) (string, error) { return tx.UniqueJob("report", "r1") })
	wantNotFound(t, "UniqueJob of a new key", err)
	tx(t, s, func(tx storage.Tx) error { return tx.PutUniqueJob("report", "r1", "job_1", false) })
	tx(t, s, func(tx storage.Tx) error { return tx.PutUniqueJob("other", "r1", "job_2", false) })
	if id := read(t, s, func(tx storage.Tx) (string, error) { return tx.UniqueJob("report", "r1") }); id != "job_1" {
		t.Errorf("UniqueJob(report, r1) = %q, want job_1", id)
	}
	if err := s.WithTx(ctx, func(tx storage.Tx) error { return tx.PutUniqueJob("report", "r1", "job_3", false) }); err == nil {
		t.Errorf("PutUniqueJob of a held key without replace: nil error, want a refusal")
	}
	tx(t, s, func(tx storage.Tx) error { return tx.PutUniqueJob("report", "r1", "job_3", true) })
	if id := read(t, s, func(tx storage.Tx) (string, error) { return tx.UniqueJob("report", "r1") }); id != "job_3" {
		t.Errorf("UniqueJob(report, r1) after replace = %q, want job_3", id)
	}
	err = s.WithTx(ctx, func(tx storage.Tx) error { return tx.PutUniqueJob("report", "r9", "job_9", true) })
	wantNotFound(t, "PutUniqueJob replacing a key nobody holds", err)
	insertJobs(t, s, Job("job_del"))
	tx(t, s, func(tx storage.Tx) error { return tx.PutUniqueJob("report", "del", "job_del", false) })
	tx(t, s, func(tx storage.Tx) error { return tx.DeleteJob("job_del") })
	_, err = readErr(s, func(tx storage.Tx) (string, error) { return tx.UniqueJob("report", "del") })
	wantNotFound(t, "UniqueJob of a key whose job was deleted", err)
}

// testUniqueJobConcurrently: 20 transactions at once each make a job for
// one key unless a job holds it: one job is made, and every other
// transaction finds it.
func testUniqueJobConcurrently(t *testing.T, s storage.Store) {
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Go(func() {
			err := s.WithTx(ctx, func(tx storage.Tx) error {
				id, err := tx.UniqueJob("report", "same")
				if err == nil {
					ids[i] = id
					return nil
				}
				if !errors.Is(err, storage.ErrNotFound) {
					return err
				}
				ids[i] = fmt.Sprintf("job_%02d", i)
				if err := tx.InsertJob(Job(ids[i])); err != nil {
					return err
				}
				return tx.PutUniqueJob("report", "same", ids[i], false)
			})
			if err != nil {
				t.Errorf("submit %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	jobs, err := s.ListJobs(ctx, storage.ListJobsParams{Tenant: "acme", Limit: 100})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ListJobs = %d jobs, %v; want 1", len(jobs), err)
	}
	for i, id := range ids {
		if id != jobs[0].ID {
			t.Errorf("submit %d answered %q, want the one job %s", i, id, jobs[0].ID)
		}
	}
}

// testStarted: the jobs of an operation started at or after a time, and the
// earliest of those starts.
func testStarted(t *testing.T, s storage.Store) {
	var jobs []*errand.Job
	for i, at := range []time.Duration{-time.Minute, 0, 10 * time.Second, 20 * time.Second} {
		j := Job(fmt.Sprintf("job_%d", i))
		started := T0.Add(at)
		j.Status, j.StartedAt = errand.StatusRunning, &started
		jobs = append(jobs, j)
	}
	other := Job("job_other")
	other.Operation = "other"
	other.StartedAt = &T0
	insertJobs(t, s, append(jobs, other, Job("job_queued"))...)
	n, first, err := s.Started(ctx, "report", T0)
	if err != nil || n != 3 || !first.Equal(T0) {
		t.Errorf("Started(report, T0) = %d, %s, %v; want 3, %s", n, first, err, T0)
	}
	n, first, err = s.Started(ctx, "report", T0.Add(time.Hour))
	if err != nil || n != 0 || !first.IsZero() {
		t.Errorf("Started(report, +1h) = %d, %s, %v; want 0, zero time", n, first, err)
	}
}
