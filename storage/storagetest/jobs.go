package storagetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// jobTests pin the job methods: reads by id and by idempotency key, writes,
// what a missing row answers, list pages.
var jobTests = map[string]func(*testing.T, storage.Store){
	"GetJob":              testGetJob,
	"InsertJobRefused":    testInsertJobRefused,
	"UpdateJob":           testUpdateJob,
	"UpdateMissingJob":    testUpdateMissingJob,
	"UpdateMissingGroup":  testUpdateMissingInGroup,
	"UnencodableJob":      testUnencodableJob,
	"DeleteJob":           testDeleteJob,
	"LockJobs":            testLockJobs,
	"JobByIdempotencyKey": testJobByIdempotencyKey,
	"ListJobs":            testListJobs,
	"ListJobsOwners":      testListJobsOwners,
	"CountRunning":        testCountRunning,
	"NextWakeup":          testNextWakeup,
	"JobOwner":            testJobOwner,
	"BulkRoundTrip":       testBulkRoundTrip,
}

// testGetJob: a Reader finds a job only in its tenant; a Tx in any tenant;
// neither finds a missing one.
func testGetJob(t *testing.T, s storage.Store) {
	insertJobs(t, s, Job("job_1"))
	if j, err := s.GetJob(ctx, "acme", "job_1"); err != nil || j.ID != "job_1" {
		t.Errorf("GetJob(acme, job_1) = %v, %v", j, err)
	}
	_, err := s.GetJob(ctx, "globex", "job_1")
	wantNotFound(t, "Reader.GetJob of another tenant's job", err)
	_, err = s.GetJob(ctx, "acme", "job_missing")
	wantNotFound(t, "Reader.GetJob of a missing job", err)
	tx(t, s, func(tx storage.Tx) error {
		if j, err := tx.GetJob("job_1"); err != nil || j.Tenant != "acme" {
			t.Errorf("Tx.GetJob(job_1) = %v, %v", j, err)
		}
		_, err := tx.GetJob("job_missing")
		wantNotFound(t, "Tx.GetJob of a missing job", err)
		return nil
	})
}

// testInsertJobRefused: a second job with an id, or with a tenant, owner and
// idempotency key, that exist is refused, and nothing of its transaction is
// kept; the same key of another owner is not a conflict.
func testInsertJobRefused(t *testing.T, s storage.Store) {
	first := Job("job_1")
	first.IdempotencyKey = "k1"
	insertJobs(t, s, first)
	other := Job("job_2")
	other.IdempotencyKey, other.Owner = "k1", "key_b"
	insertJobs(t, s, other)
	for name, dup := range map[string]*errand.Job{"same id": Job("job_1"), "same key": func() *errand.Job {
		j := Job("job_3")
		j.IdempotencyKey = "k1"
		return j
	}()} {
		err := s.WithTx(ctx, func(tx storage.Tx) error {
			if err := tx.InsertEvent(Event("refused", `{}`)); err != nil {
				return err
			}
			return tx.InsertJob(dup)
		})
		if err == nil {
			t.Errorf("InsertJob (%s) was not refused", name)
		}
	}
	if evs, _ := s.ListEvents(ctx, storage.ListEventsParams{Tenant: "acme", Stream: "refused", Limit: 10}); len(evs) != 0 {
		t.Errorf("refused transactions kept %d events", len(evs))
	}
	if _, err := s.GetJob(ctx, "acme", "job_3"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the refused job_3 was stored: %v", err)
	}
}

// testUpdateJob: UpdateJob writes every mutable field and no other; the
// transaction reads its own write.
func testUpdateJob(t *testing.T, s storage.Store) {
	insertJobs(t, s, Job("job_1"))
	later := T0.Add(time.Hour)
	var want *errand.Job
	tx(t, s, func(tx storage.Tx) error {
		j, err := tx.GetJob("job_1")
		if err != nil {
			return err
		}
		j.Status, j.Attempt, j.MaxAttempts, j.CancelRequested, j.RunAt = errand.StatusFailed, 2, 5, true, later
		j.Result, j.Error = json.RawMessage(`{"r":1}`), &errand.Problem{Code: "boom", Detail: "it broke"}
		j.Progress = &errand.Progress{Percent: 50, Message: "half"}
		j.StartedAt, j.FinishedAt, j.LeaseExpiresAt, j.ExpiresAt = &T0, &later, &later, &later
		j.LeaseToken, j.Worker = "tok", "w1"
		j.Artifacts = []errand.Artifact{{Name: "a.txt", ContentType: "text/plain", Size: 3, SHA256: "ab", URL: "/x"}}
		if err := tx.UpdateJob(j); err != nil {
			return err
		}
		want = j
		back, err := tx.GetJob("job_1")
		if err != nil || !reflect.DeepEqual(back, j) {
			t.Errorf("GetJob after UpdateJob in the same transaction =\n%+v, %v\nwant\n%+v", back, err, j)
		}
		// Immutable fields are not written.
		c := *j
		c.Tenant, c.Owner, c.Operation, c.Input, c.Priority, c.TimeoutSeconds = "x", "x", "x", json.RawMessage(`1`), 9, 9
		c.Metadata, c.CallbackURL, c.IdempotencyKey, c.RequestHash, c.CreatedAt = map[string]string{"x": "y"}, "https://x", "x", "x", later
		return tx.UpdateJob(&c)
	})
	got, err := s.GetJob(ctx, "acme", "job_1")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("after UpdateJob:\n%+v, %v\nwant\n%+v", got, err, want)
	}
}

// testUpdateMissingJob: updating a job that does not exist is ErrNotFound by
// the time WithTx returns, and nothing of that transaction is kept.
func testUpdateMissingJob(t *testing.T, s storage.Store) {
	insertJobs(t, s, Job("job_1"))
	for name, fn := range map[string]func(tx storage.Tx) error{
		"alone": func(tx storage.Tx) error { return tx.UpdateJob(Job("job_missing")) },
		"then a read": func(tx storage.Tx) error {
			if err := tx.UpdateJob(Job("job_missing")); err != nil {
				return err
			}
			_, err := tx.GetJob("job_1")
			return err
		},
		"beside writes": func(tx storage.Tx) error {
			if err := tx.InsertEvent(Event("lost", `{}`)); err != nil {
				return err
			}
			j := Job("job_1")
			j.Attempt = 7
			if err := tx.UpdateJob(j); err != nil {
				return err
			}
			return tx.UpdateJob(Job("job_missing"))
		},
	} {
		wantNotFound(t, "UpdateJob of a missing job ("+name+")", s.WithTx(ctx, fn))
	}
	if j, _ := s.GetJob(ctx, "acme", "job_1"); j.Attempt != 0 {
		t.Errorf("a failed transaction's update of job_1 was kept (attempt %d)", j.Attempt)
	}
	if _, err := s.GetJob(ctx, "acme", "job_missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateJob made the missing job: %v", err)
	}
	if evs, _ := s.ListEvents(ctx, storage.ListEventsParams{Tenant: "acme", Stream: "lost", Limit: 10}); len(evs) != 0 {
		t.Errorf("a failed transaction's event was kept")
	}
}

// testUpdateMissingInGroup: among many concurrent calls (which a driver may
// run in one transaction), the one that updates a missing job hears
// ErrNotFound and the others are untouched by it.
func testUpdateMissingInGroup(t *testing.T, s storage.Store) {
	const n = 60
	var jobs []*errand.Job
	for i := range n {
		jobs = append(jobs, Job(fmt.Sprintf("job_%02d", i)))
	}
	insertJobs(t, s, jobs...)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.WithTx(ctx, func(tx storage.Tx) error {
				j, err := tx.GetJob(jobs[i].ID)
				if err != nil {
					return err
				}
				j.Attempt++
				if err := tx.UpdateJob(j); err != nil {
					return err
				}
				if i%10 == 3 {
					return tx.UpdateJob(Job(fmt.Sprintf("job_missing%d", i)))
				}
				return tx.InsertEvent(Event(j.ID, `{}`))
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		j, _ := s.GetJob(ctx, "acme", jobs[i].ID)
		if i%10 == 3 {
			wantNotFound(t, fmt.Sprintf("call %d (updates a missing job)", i), err)
			if j.Attempt != 0 {
				t.Errorf("call %d failed, but its update was kept", i)
			}
			continue
		}
		if err != nil || j.Attempt != 1 {
			t.Errorf("call %d: %v, attempt %d; want success, attempt 1", i, err, j.Attempt)
		}
	}
}

// testUnencodableJob: a job whose JSON columns do not encode (a NaN
// progress) is refused by InsertJob and UpdateJob themselves, at once, and
// nothing of it is stored (it was stored with NULL in their place).
func testUnencodableJob(t *testing.T, s storage.Store) {
	insertJobs(t, s, Job("job_1"))
	nan := &errand.Progress{Percent: math.NaN()}
	tx(t, s, func(tx storage.Tx) error {
		j := Job("job_2")
		j.Progress = nan
		if err := tx.InsertJob(j); err == nil {
			t.Errorf("InsertJob of a job with a NaN progress: no error")
		}
		k := Job("job_1")
		k.Attempt, k.Progress = 1, nan
		if err := tx.UpdateJob(k); err == nil {
			t.Errorf("UpdateJob of a job with a NaN progress: no error")
		}
		return nil // the transaction commits what is left: nothing
	})
	_, err := s.GetJob(ctx, "acme", "job_2")
	wantNotFound(t, "the refused insert", err)
	if j, err := s.GetJob(ctx, "acme", "job_1"); err != nil || j.Attempt != 0 || j.Progress != nil {
		t.Errorf("job_1 after a refused update = %+v, %v; want it unchanged", j, err)
	}
}

// testDeleteJob: DeleteJob removes the job and its stream's events (and no
// others); a missing job is ErrNotFound.
func testDeleteJob(t *testing.T, s storage.Store) {
	insertJobs(t, s, Job("job_1"), Job("job_2"))
	insertEvents(t, s, Event("job_1", `1`), Event("job_1", `2`), Event("job_2", `3`))
	tx(t, s, func(tx storage.Tx) error { return tx.DeleteJob("job_1") })
	_, err := s.GetJob(ctx, "acme", "job_1")
	wantNotFound(t, "GetJob after DeleteJob", err)
	if evs, _ := s.ListEvents(ctx, storage.ListEventsParams{Tenant: "acme", Stream: "job_1", Limit: 10}); len(evs) != 0 {
		t.Errorf("a deleted job's events: %d left", len(evs))
	}
	if evs, _ := s.ListEvents(ctx, storage.ListEventsParams{Tenant: "acme", Stream: "job_2", Limit: 10}); len(evs) != 1 {
		t.Errorf("another job's events: %d left, want 1", len(evs))
	}
	wantNotFound(t, "DeleteJob of a missing job", s.WithTx(ctx, func(tx storage.Tx) error { return tx.DeleteJob("job_1") }))
	// A job inserted in the same transaction can be deleted in it.
	tx(t, s, func(tx storage.Tx) error {
		if err := tx.InsertJob(Job("job_3")); err != nil {
			return err
		}
		return tx.DeleteJob("job_3")
	})
}

// testLockJobs: after LockJobs, GetJob answers for locked, missing and
// updated jobs as without it, and a job GetJob returned may be changed by the
// caller without changing what the next GetJob returns.
func testLockJobs(t *testing.T, s storage.Store) {
	insertJobs(t, s, Job("job_1"), Job("job_2"))
	tx(t, s, func(tx storage.Tx) error {
		if err := tx.LockJobs([]string{"job_1", "job_2", "job_missing"}); err != nil {
			return err
		}
		j, err := tx.GetJob("job_1")
		if err != nil {
			return err
		}
		j.Attempt = 42 // not written
		if again, err := tx.GetJob("job_1"); err != nil || again.Attempt != 0 {
			t.Errorf("GetJob after changing the returned job = attempt %d, %v; want 0", again.Attempt, err)
		}
		_, err = tx.GetJob("job_missing")
		wantNotFound(t, "GetJob of a locked missing job", err)
		k, _ := tx.GetJob("job_2")
		k.Attempt = 2
		if err := tx.UpdateJob(k); err != nil {
			return err
		}
		if back, err := tx.GetJob("job_2"); err != nil || back.Attempt != 2 {
			t.Errorf("GetJob after UpdateJob of a locked job = attempt %d, %v; want 2", back.Attempt, err)
		}
		return tx.LockJobs(nil)
	})
}

// testJobByIdempotencyKey: found by tenant, owner and key, and only so.
func testJobByIdempotencyKey(t *testing.T, s storage.Store) {
	j := Job("job_1")
	j.IdempotencyKey, j.RequestHash = "k1", "h1"
	insertJobs(t, s, j, Job("job_2"))
	tx(t, s, func(tx storage.Tx) error {
		got, err := tx.JobByIdempotencyKey("acme", "key_a", "k1")
		if err != nil || got.ID != "job_1" || got.RequestHash != "h1" {
			t.Errorf("JobByIdempotencyKey(acme, key_a, k1) = %v, %v; want job_1", got, err)
		}
		for _, c := range [][3]string{{"globex", "key_a", "k1"}, {"acme", "key_b", "k1"}, {"acme", "key_a", "k2"}, {"acme", "key_a", ""}} {
			_, err := tx.JobByIdempotencyKey(c[0], c[1], c[2])
			wantNotFound(t, fmt.Sprintf("JobByIdempotencyKey%v", c), err)
		}
		return nil
	})
}

// testListJobs: a tenant's jobs newest (highest id) first, by page, by
// operation and status.
func testListJobs(t *testing.T, s storage.Store) {
	var jobs []*errand.Job
	for i := range 7 {
		j := Job(fmt.Sprintf("job_%d", i))
		if i%2 == 1 {
			j.Operation = "other"
		}
		if i == 4 {
			j.Status = errand.StatusCanceled
		}
		jobs = append(jobs, j)
	}
	elsewhere := Job("job_9")
	elsewhere.Tenant = "globex"
	insertJobs(t, s, append(jobs, elsewhere)...)
	for _, c := range []struct {
		p    storage.ListJobsParams
		want []string
	}{
		{storage.ListJobsParams{Limit: 100}, []string{"job_6", "job_5", "job_4", "job_3", "job_2", "job_1", "job_0"}},
		{storage.ListJobsParams{Limit: 3}, []string{"job_6", "job_5", "job_4"}},
		{storage.ListJobsParams{Limit: 3, Before: "job_4"}, []string{"job_3", "job_2", "job_1"}},
		{storage.ListJobsParams{Limit: 100, Operation: "other"}, []string{"job_5", "job_3", "job_1"}},
		{storage.ListJobsParams{Limit: 100, Status: errand.StatusCanceled}, []string{"job_4"}},
		{storage.ListJobsParams{Limit: 100, Operation: "other", Status: errand.StatusCanceled}, []string{}},
		{storage.ListJobsParams{Limit: 100, Tenant: "initech"}, []string{}},
	} {
		if c.p.Tenant == "" {
			c.p.Tenant = "acme"
		}
		got, err := s.ListJobs(ctx, c.p)
		if err != nil || !slices.Equal(jobIDs(got), c.want) {
			t.Errorf("ListJobs(%+v) = %v, %v; want %v", c.p, jobIDs(got), err, c.want)
		}
	}
}

// testListJobsOwners: Owner selects an owner's jobs; with LegacyOwner also
// those stored under its legacy name.
func testListJobsOwners(t *testing.T, s storage.Store) {
	mk := func(id, owner string) *errand.Job { j := Job(id); j.Owner = owner; return j }
	insertJobs(t, s, mk("job_1", "jwt:idp#alice"), mk("job_2", "legacy:alice"), mk("job_3", "key_b"))
	for _, c := range []struct {
		owner, legacy string
		want          []string
	}{
		{"", "", []string{"job_3", "job_2", "job_1"}},
		{"jwt:idp#alice", "", []string{"job_1"}},
		{"jwt:idp#alice", "legacy:alice", []string{"job_2", "job_1"}},
		{"key_b", "", []string{"job_3"}},
	} {
		got, err := s.ListJobs(ctx, storage.ListJobsParams{Tenant: "acme", Owner: c.owner, LegacyOwner: c.legacy, Limit: 10})
		if err != nil || !slices.Equal(jobIDs(got), c.want) {
			t.Errorf("ListJobs(owner %q, legacy %q) = %v, %v; want %v", c.owner, c.legacy, jobIDs(got), err, c.want)
		}
	}
}

// testCountRunning counts an operation's running jobs in every tenant.
func testCountRunning(t *testing.T, s storage.Store) {
	var jobs []*errand.Job
	for i, st := range []errand.Status{errand.StatusRunning, errand.StatusRunning, errand.StatusQueued, errand.StatusSucceeded} {
		j := Job(fmt.Sprintf("job_%d", i))
		j.Status, j.Tenant = st, []string{"acme", "globex"}[i%2]
		jobs = append(jobs, j)
	}
	other := Job("job_9")
	other.Status, other.Operation = errand.StatusRunning, "other"
	insertJobs(t, s, append(jobs, other)...)
	for op, want := range map[string]int{"report": 2, "other": 1, "none": 0} {
		if n := read(t, s, func(tx storage.Tx) (int, error) { return tx.CountRunning(op) }); n != want {
			t.Errorf("CountRunning(%s) = %d, want %d", op, n, want)
		}
	}
}

// testNextWakeup: the earliest run_at of a scheduled job and lease end of a
// running one; zero when there is none.
func testNextWakeup(t *testing.T, s storage.Store) {
	if runAt, lease, err := s.NextWakeup(ctx); err != nil || !runAt.IsZero() || !lease.IsZero() {
		t.Errorf("NextWakeup of an empty store = %v, %v, %v; want zeros", runAt, lease, err)
	}
	var jobs []*errand.Job
	for i, d := range []time.Duration{3, 1, 2} {
		sch, run := Job(fmt.Sprintf("job_s%d", i)), Job(fmt.Sprintf("job_r%d", i))
		sch.Status, sch.RunAt = errand.StatusScheduled, T0.Add(d*time.Minute)
		exp := T0.Add(d * time.Hour)
		run.Status, run.LeaseExpiresAt = errand.StatusRunning, &exp
		jobs = append(jobs, sch, run)
	}
	queued := Job("job_q") // a queued job's run_at is not a wake-up
	queued.RunAt = T0.Add(-time.Hour)
	insertJobs(t, s, append(jobs, queued)...)
	runAt, lease, err := s.NextWakeup(ctx)
	if err != nil || !runAt.Equal(T0.Add(time.Minute)) || !lease.Equal(T0.Add(time.Hour)) {
		t.Errorf("NextWakeup = %v, %v, %v; want %v, %v", runAt, lease, err, T0.Add(time.Minute), T0.Add(time.Hour))
	}
}

// testJobOwner: the tenant and owner of a job in any tenant.
func testJobOwner(t *testing.T, s storage.Store) {
	j := Job("job_1")
	j.Tenant, j.Owner = "globex", "key_g"
	insertJobs(t, s, j)
	tenant, owner, err := s.JobOwner(ctx, "job_1")
	if err != nil || tenant != "globex" || owner != "key_g" {
		t.Errorf("JobOwner = %q, %q, %v; want globex, key_g", tenant, owner, err)
	}
	_, _, err = s.JobOwner(ctx, "job_missing")
	wantNotFound(t, "JobOwner of a missing job", err)
}
