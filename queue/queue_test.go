package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/servicetest"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/queue"
	"github.com/errandhq/errand/storage"
)

// dev is the principal the tests act as.
var dev = servicetest.Dev

// The queue's behaviour (leases, heartbeats, completion, retries, the
// maintainer), on every driver (teststore.Each).

func TestLeaseOrder(t *testing.T) { teststore.Each(t, testLeaseOrder) }

func testLeaseOrder(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	prio := func(n int) *int { return &n }
	low := h.Submit("report", job.SubmitParams{Priority: prio(-5)})
	h.Clock.Advance(time.Millisecond)
	first := h.Submit("report", job.SubmitParams{})
	h.Clock.Advance(time.Millisecond)
	high := h.Submit("report", job.SubmitParams{Priority: prio(10)})
	h.Clock.Advance(time.Millisecond)
	second := h.Submit("report", job.SubmitParams{})
	var got []string
	for range 4 {
		ls := h.Lease(1, "report")
		if len(ls) != 1 {
			t.Fatalf("Lease = %d leases, want 1", len(ls))
		}
		got = append(got, ls[0].Job.ID)
	}
	want := []string{high.ID, first.ID, second.ID, low.ID}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lease order = %v, want %v (priority, then run_at)", got, want)
	}
	if ls := h.Lease(1, "report"); len(ls) != 0 {
		t.Fatalf("Lease on an empty queue = %d leases, want 0", len(ls))
	}
}

func TestLeaseAcrossOperations(t *testing.T) { teststore.Each(t, testLeaseAcrossOperations) }

func testLeaseAcrossOperations(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("a"), servicetest.Op("b"))
	prio := 5
	a := h.Submit("a", job.SubmitParams{})
	h.Clock.Advance(time.Millisecond)
	b := h.Submit("b", job.SubmitParams{Priority: &prio})
	ls := h.Lease(2, "a", "b")
	if len(ls) != 2 || ls[0].Job.ID != b.ID || ls[1].Job.ID != a.ID {
		t.Fatalf("Lease(a, b) = %v, want b (priority 5) then a", servicetest.LeaseIDs(ls))
	}
	_, err := h.Queue.Lease(h.Ctx, queue.LeaseParams{Operations: []string{"nope"}})
	servicetest.Code(t, err, errand.EOPNOTFOUND)
}

func TestScheduled(t *testing.T) { teststore.Each(t, testScheduled) }

func testScheduled(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	delay := 30
	j := h.Submit("report", job.SubmitParams{Delay: &delay})
	if j.Status != errand.StatusScheduled || !j.RunAt.Equal(h.Clock.Now().Add(30*time.Second)) {
		t.Fatalf("submitted with delay: status %s run_at %v, want scheduled at now+30s", j.Status, j.RunAt)
	}
	if ls := h.Lease(1, "report"); len(ls) != 0 {
		t.Fatalf("leased a scheduled job before its run_at")
	}
	runAt, _, err := h.Store.NextWakeup(h.Ctx)
	if err != nil || !runAt.Equal(j.RunAt) {
		t.Fatalf("NextWakeup = %v, %v; want %v", runAt, err, j.RunAt)
	}
	h.Clock.Advance(29 * time.Second)
	h.Maint.Pass(h.Ctx, h.Clock.Now())
	if got := h.Get(j.ID).Status; got != errand.StatusScheduled {
		t.Fatalf("1s before run_at: status %s, want scheduled", got)
	}
	h.Clock.Advance(time.Second)
	h.Maint.Pass(h.Ctx, h.Clock.Now())
	if got := h.Get(j.ID).Status; got != errand.StatusQueued {
		t.Fatalf("at run_at: status %s, want queued", got)
	}
	if ls := h.Lease(1, "report"); len(ls) != 1 || ls[0].Job.ID != j.ID {
		t.Fatalf("Lease after run_at = %v, want %s", servicetest.LeaseIDs(ls), j.ID)
	}
}

func TestConcurrencyLimit(t *testing.T) { teststore.Each(t, testConcurrencyLimit) }

func testConcurrencyLimit(t *testing.T, s storage.Store) {
	op := servicetest.Op("report")
	op.Concurrency = 2
	h := servicetest.New(t, s, op)
	for range 5 {
		h.Submit("report", job.SubmitParams{})
	}
	ls := h.Lease(5, "report")
	if len(ls) != 2 {
		t.Fatalf("Lease(5) with concurrency 2 = %d leases, want 2", len(ls))
	}
	if more := h.Lease(5, "report"); len(more) != 0 {
		t.Fatalf("Lease at the limit = %d leases, want 0", len(more))
	}
	if _, err := h.Queue.Complete(h.Ctx, ls[0].ID, servicetest.Input(`{}`)); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if more := h.Lease(5, "report"); len(more) != 1 {
		t.Fatalf("Lease after one completed = %d leases, want 1", len(more))
	}
}

func TestLeaseExpiry(t *testing.T) { teststore.Each(t, testLeaseExpiry) }

func testLeaseExpiry(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	ls, err := h.Queue.Lease(h.Ctx, queue.LeaseParams{Operations: []string{"report"}, LeaseSeconds: 5, Worker: "w1"})
	if err != nil || len(ls) != 1 {
		t.Fatalf("Lease = %v, %v", servicetest.LeaseIDs(ls), err)
	}
	if want := h.Clock.Now().Add(5 * time.Second); !ls[0].ExpiresAt.Equal(want) {
		t.Fatalf("expires_at = %v, want %v", ls[0].ExpiresAt, want)
	}
	h.Clock.Advance(4 * time.Second)
	hb, err := h.Queue.Heartbeat(h.Ctx, ls[0].ID, queue.HeartbeatParams{ExtendSeconds: 5})
	if err != nil || !hb.ExpiresAt.Equal(h.Clock.Now().Add(5*time.Second)) {
		t.Fatalf("Heartbeat = %+v, %v; want the lease extended to now+5s", hb, err)
	}
	h.Clock.Advance(5 * time.Second)
	_, err = h.Queue.Heartbeat(h.Ctx, ls[0].ID, queue.HeartbeatParams{})
	servicetest.Code(t, err, errand.ELEASEEXPIRED)
	h.Maint.Pass(h.Ctx, h.Clock.Now().Add(time.Millisecond))
	got := h.Get(j.ID)
	if got.Status != errand.StatusScheduled || got.Attempt != 1 || got.Error == nil || got.Error.Code != errand.ECODELEASEEXPIRED {
		t.Fatalf("after expiry: status %s attempt %d error %+v; want scheduled, attempt 1, lease_expired", got.Status, got.Attempt, got.Error)
	}
	h.Clock.Advance(time.Minute)
	h.Maint.Pass(h.Ctx, h.Clock.Now())
	again := h.Lease(1, "report")
	if len(again) != 1 || again[0].Job.Attempt != 2 {
		t.Fatalf("re-lease = %v, want the job at attempt 2", servicetest.LeaseIDs(again))
	}
	_, err = h.Queue.Complete(h.Ctx, ls[0].ID, nil)
	servicetest.Code(t, err, errand.ELEASEEXPIRED)
	if _, err := h.Queue.Complete(h.Ctx, again[0].ID, servicetest.Input(`{"ok":true}`)); err != nil {
		t.Fatalf("Complete with the new lease: %v", err)
	}
}

func TestTimeout(t *testing.T) { teststore.Each(t, testTimeout) }

func testTimeout(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	timeout := 5
	j := h.Submit("report", job.SubmitParams{Timeout: &timeout})
	ls, _ := h.Queue.Lease(h.Ctx, queue.LeaseParams{Operations: []string{"report"}, LeaseSeconds: 60})
	if want := h.Clock.Now().Add(5 * time.Second); len(ls) != 1 || !ls[0].ExpiresAt.Equal(want) {
		t.Fatalf("lease of a job with a 5s timeout = %v, want it to end at %v", ls, want)
	}
	h.Clock.Advance(5 * time.Second)
	h.Maint.Pass(h.Ctx, h.Clock.Now().Add(time.Millisecond))
	if got := h.Get(j.ID); got.Error == nil || got.Error.Code != errand.ECODETIMEOUT {
		t.Fatalf("after the timeout: error %+v, want code timeout", got.Error)
	}
}

func TestRetryBackoff(t *testing.T) { teststore.Each(t, testRetryBackoff) }

func testRetryBackoff(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report")) // 3 attempts, initial 10s, max 1m
	j := h.Submit("report", job.SubmitParams{})
	for attempt := 1; attempt <= 3; attempt++ {
		ls := h.Lease(1, "report")
		if len(ls) != 1 || ls[0].Job.Attempt != attempt {
			t.Fatalf("attempt %d: leases %v", attempt, servicetest.LeaseIDs(ls))
		}
		var fp queue.FailParams
		fp.Error.Code, fp.Error.Message = "boom", "it broke"
		got, err := h.Queue.Fail(h.Ctx, ls[0].ID, fp)
		if err != nil {
			t.Fatalf("Fail: %v", err)
		}
		if attempt == 3 {
			if got.Status != errand.StatusFailed || got.Error.Code != "boom" || got.FinishedAt == nil {
				t.Fatalf("after the last attempt: %s %+v, want failed with the error", got.Status, got.Error)
			}
			break
		}
		full := 10 * time.Second << (attempt - 1)
		wait := got.RunAt.Sub(h.Clock.Now())
		if got.Status != errand.StatusScheduled || wait < full/2 || wait > full {
			t.Fatalf("backoff after attempt %d = %v (status %s), want between %v and %v", attempt, wait, got.Status, full/2, full)
		}
		h.Clock.Advance(wait)
		h.Maint.Pass(h.Ctx, h.Clock.Now())
	}
	// retry_after_seconds overrides the backoff.
	k := h.Submit("report", job.SubmitParams{})
	ls := h.Lease(1, "report")
	after := 42.0
	got, err := h.Queue.Fail(h.Ctx, ls[0].ID, queue.FailParams{RetryAfterSeconds: &after})
	if err != nil || !got.RunAt.Equal(h.Clock.Now().Add(42*time.Second)) {
		t.Fatalf("Fail with retry_after_seconds 42: run_at %v, %v; want now+42s", got.RunAt, err)
	}
	_ = j
	_ = k
}

func TestFailWithoutRetry(t *testing.T) { teststore.Each(t, testFailWithoutRetry) }

func testFailWithoutRetry(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	h.Submit("report", job.SubmitParams{})
	ls := h.Lease(1, "report")
	no := false
	got, err := h.Queue.Fail(h.Ctx, ls[0].ID, queue.FailParams{Retry: &no})
	if err != nil || got.Status != errand.StatusFailed || got.Attempt != 1 {
		t.Fatalf("Fail(retry=false) = %s attempt %d, %v; want failed after 1 attempt", got.Status, got.Attempt, err)
	}
}

func TestRelease(t *testing.T) { teststore.Each(t, testRelease) }

func testRelease(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	ls := h.Lease(1, "report")
	got, err := h.Queue.Release(h.Ctx, ls[0].ID)
	if err != nil || got.Status != errand.StatusQueued || got.Attempt != 0 {
		t.Fatalf("Release = %s attempt %d, %v; want queued, attempt 0 (not counted)", got.Status, got.Attempt, err)
	}
	again := h.Lease(1, "report")
	if len(again) != 1 || again[0].Job.ID != j.ID || again[0].Job.Attempt != 1 {
		t.Fatalf("after Release, Lease = %v; want the job at attempt 1", servicetest.LeaseIDs(again))
	}
	_, err = h.Queue.Release(h.Ctx, ls[0].ID)
	servicetest.Code(t, err, errand.ELEASEEXPIRED)
}

func TestRetention(t *testing.T) { teststore.Each(t, testRetention) }

func testRetention(t *testing.T, s storage.Store) {
	op := servicetest.Op("report")
	op.Retention = time.Hour
	h := servicetest.New(t, s, op)
	done := h.Submit("report", job.SubmitParams{})
	h.Jobs.Cancel(h.Ctx, dev, done.ID)
	pending := h.Submit("report", job.SubmitParams{})
	h.Clock.Advance(59 * time.Minute)
	if n, err := h.Maint.Clean(h.Ctx, h.Clock.Now()); err != nil || n != 0 {
		t.Fatalf("Clean before retention ended = %d, %v; want 0", n, err)
	}
	h.Clock.Advance(2 * time.Minute)
	if n, err := h.Maint.Clean(h.Ctx, h.Clock.Now()); err != nil || n != 1 {
		t.Fatalf("Clean after retention = %d, %v; want 1", n, err)
	}
	_, err := h.Jobs.Get(h.Ctx, dev, done.ID)
	servicetest.Code(t, err, errand.EJOBNOTFOUND)
	h.Get(pending.ID) // unfinished jobs are kept
}

func TestBatchComplete(t *testing.T) { teststore.Each(t, testBatchComplete) }

func testBatchComplete(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	for range 3 {
		h.Submit("report", job.SubmitParams{})
	}
	ls := h.Lease(3, "report")
	cs := []queue.Completion{{LeaseID: ls[0].ID}, {LeaseID: "lease_bogus"}, {LeaseID: ls[1].ID, Result: servicetest.Input(`1`)}, {LeaseID: ls[0].ID}}
	out, err := h.Queue.CompleteBatch(h.Ctx, cs)
	if err != nil {
		t.Fatalf("CompleteBatch: %v", err)
	}
	wantCodes := []string{"", errand.ELEASEEXPIRED, "", errand.ELEASEEXPIRED}
	for i, o := range out {
		if got := errand.ErrorCode(o.Err); got != wantCodes[i] {
			t.Fatalf("entry %d: code %q, want %q", i, got, wantCodes[i])
		}
	}
	if h.Get(ls[1].Job.ID).Status != errand.StatusSucceeded || h.Get(ls[2].Job.ID).Status != errand.StatusRunning {
		t.Fatalf("batch: completed entries must succeed, others stay running")
	}
}

func TestCompleteAndLease(t *testing.T) { teststore.Each(t, testCompleteAndLease) }

// testCompleteAndLease: completions sent with a lease are done in the same
// transaction as its claim, so the slot a completion frees (concurrency 1
// here) is the next job's at once; each entry answers on its own; with no job
// left, the completion is kept.
func testCompleteAndLease(t *testing.T, s storage.Store) {
	op := servicetest.Op("report")
	op.Concurrency = 1
	h := servicetest.New(t, s, op)
	a, b := h.Submit("report", job.SubmitParams{}), h.Submit("report", job.SubmitParams{})
	ls := h.Lease(2, "report")
	if len(ls) != 1 || ls[0].Job.ID != a.ID {
		t.Fatalf("first lease = %v, want %s alone (concurrency 1)", servicetest.LeaseIDs(ls), a.ID)
	}
	out, next, err := h.Queue.CompleteAndLease(h.Ctx, queue.LeaseParams{Operations: []string{"report"},
		Completions: []queue.Completion{{LeaseID: ls[0].ID, Result: servicetest.Input(`{"ok":1}`)}, {LeaseID: "lease_bogus"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Err != nil || errand.ErrorCode(out[1].Err) != errand.ELEASEEXPIRED {
		t.Fatalf("outcomes = %+v; want the first completed and the bogus lease refused", out)
	}
	if len(next) != 1 || next[0].Job.ID != b.ID {
		t.Fatalf("lease beside the completion = %v, want %s (the slot it freed)", servicetest.LeaseIDs(next), b.ID)
	}
	out, none, err := h.Queue.CompleteAndLease(h.Ctx, queue.LeaseParams{Operations: []string{"report"},
		Completions: []queue.Completion{{LeaseID: next[0].ID, Result: servicetest.Input(`{"ok":2}`)}}})
	if err != nil || len(none) != 0 || len(out) != 1 || out[0].Err != nil {
		t.Fatalf("with nothing left: leases %v, outcomes %+v, %v", servicetest.LeaseIDs(none), out, err)
	}
	for _, id := range []string{a.ID, b.ID} {
		if got := h.Get(id).Status; got != errand.StatusSucceeded {
			t.Errorf("job %s: %s, want succeeded", id, got)
		}
	}
}

func TestCompletionsOutliveALaterClaim(t *testing.T) {
	teststore.Each(t, testCompletionsOutliveALaterClaim)
}

// failLater fails every transaction but the first once armed: the store
// going away while a lease request long-polls.
type failLater struct {
	storage.Store
	armed  atomic.Bool
	passed atomic.Int32
}

func (f *failLater) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	if f.armed.Load() && f.passed.Add(1) > 1 {
		return errand.Errorf(errand.EUNAVAILABLE, "the store went away (test)")
	}
	return f.Store.WithTx(ctx, fn)
}

// testCompletionsOutliveALaterClaim: completions that committed with a lease
// request's first claim are answered even when a later claim of its long
// poll fails: the worker is told they succeeded, not that the request failed.
func testCompletionsOutliveALaterClaim(t *testing.T, s storage.Store) {
	fs := &failLater{Store: s}
	h := servicetest.New(t, fs, servicetest.Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	ls := h.Lease(1, "report")
	fs.armed.Store(true)
	out, leases, err := h.Queue.CompleteAndLease(h.Ctx, queue.LeaseParams{Operations: []string{"report"}, WaitSeconds: 0.1,
		Completions: []queue.Completion{{LeaseID: ls[0].ID, Result: servicetest.Input(`{"ok":1}`)}}})
	fs.armed.Store(false)
	if err != nil || len(leases) != 0 || len(out) != 1 || out[0].Err != nil {
		t.Fatalf("a later claim failed: outcomes %+v, leases %d, err %v; want the completion answered, no leases, no error", out, len(leases), err)
	}
	if got := h.Get(j.ID).Status; got != errand.StatusSucceeded {
		t.Fatalf("job after its completion rode on the lease: %s, want succeeded", got)
	}
}

func TestLongPollWakes(t *testing.T) { teststore.Each(t, testLongPollWakes) }

func testLongPollWakes(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	got := make(chan []errand.Lease, 1)
	go func() {
		ls, _ := h.Queue.Lease(h.Ctx, queue.LeaseParams{Operations: []string{"report"}, WaitSeconds: 10})
		got <- ls
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	j := h.Submit("report", job.SubmitParams{})
	select {
	case ls := <-got:
		if len(ls) != 1 || ls[0].Job.ID != j.ID {
			t.Fatalf("long poll got %v, want %s", servicetest.LeaseIDs(ls), j.ID)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("long poll woke %v after the submit", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("long poll did not wake within 5s of a submit")
	}
}

func TestLeaseScope(t *testing.T) { teststore.Each(t, testLeaseScope) }

// testLeaseScope: a tenant's principal leases only its tenant's jobs of the
// operations it may lease and cannot act on another tenant's lease; an
// operator-level grant leases every tenant's; the queue itself (errand's
// runners) every job.
func testLeaseScope(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"), servicetest.Op("other"))
	acme := errand.Principal{ID: "key_w", Tenant: "acme", Permissions: []string{"workers:lease:report"}}
	globex := errand.Principal{ID: "key_g", Tenant: "globex", Permissions: []string{errand.PermAdmin}}
	fleet := errand.Principal{ID: "key_f", Tenant: "ops", Permissions: []string{"workers:lease:report@*"}}
	submit := func(p errand.Principal, op string) *errand.Job {
		j, _, err := h.Jobs.Submit(h.Ctx, p, job.SubmitParams{Operation: op, Input: servicetest.Input(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	admin := func(tenant string) errand.Principal {
		return errand.Principal{ID: "key_" + tenant, Tenant: tenant, Permissions: []string{errand.PermAdmin}}
	}
	a1, g1 := submit(admin("acme"), "report"), submit(admin("globex"), "report")
	lease := func(p errand.Principal, ops ...string) ([]errand.Lease, error) {
		return h.Queue.For(queue.ScopeOf(p)).Lease(h.Ctx, queue.LeaseParams{Operations: ops, MaxJobs: 10})
	}
	if _, err := lease(acme, "other"); errand.ErrorCode(err) != errand.EFORBIDDEN {
		t.Errorf("lease an operation the principal may not: %v, want forbidden", err)
	}
	if ls, err := lease(acme, "report"); err != nil || len(ls) != 1 || ls[0].Job.ID != a1.ID {
		t.Fatalf("acme's worker leases %+v, %v; want only acme's job", ls, err)
	}
	ls, err := lease(globex, "report")
	if err != nil || len(ls) != 1 || ls[0].Job.ID != g1.ID {
		t.Fatalf("globex's admin leases %+v, %v; want only globex's job", ls, err)
	}
	theirs := ls[0].ID
	acmeQ := h.Queue.For(queue.ScopeOf(acme))
	_, err = acmeQ.Heartbeat(h.Ctx, theirs, queue.HeartbeatParams{})
	var e *errand.Error
	if !errors.As(err, &e) || e.Code != errand.ELEASEEXPIRED || e.Action != errand.PermWorkersLease {
		t.Errorf("acme heartbeats globex's lease: %v, want lease_expired recorded as a denial", err)
	}
	if _, err := acmeQ.Complete(h.Ctx, theirs, servicetest.Input(`1`)); errand.ErrorCode(err) != errand.ELEASEEXPIRED {
		t.Errorf("acme completes globex's lease: %v, want lease_expired", err)
	}
	out, _ := acmeQ.CompleteBatch(h.Ctx, []queue.Completion{{LeaseID: theirs}})
	if errand.ErrorCode(out[0].Err) != errand.ELEASEEXPIRED {
		t.Errorf("acme completes globex's lease in a batch: %v, want lease_expired", out[0].Err)
	}
	if got, err := h.Jobs.Get(h.Ctx, admin("globex"), g1.ID); err != nil || got.Status != errand.StatusRunning {
		t.Errorf("globex's job after acme's attempts: %+v, %v; want running", got, err)
	}
	if _, err := h.Queue.For(queue.ScopeOf(globex)).Complete(h.Ctx, theirs, servicetest.Input(`1`)); err != nil {
		t.Errorf("globex completes its own lease: %v", err)
	}
	a2, g2 := submit(admin("acme"), "report"), submit(admin("globex"), "report")
	ls, err = lease(fleet, "report")
	if got := servicetest.LeaseIDs(ls); err != nil || !slices.Contains(got, a2.ID) || !slices.Contains(got, g2.ID) {
		t.Errorf("the fleet worker leases %v, %v; want acme's and globex's", got, err)
	}
	if _, err := lease(errand.Principal{ID: "x", Tenant: "acme", Permissions: []string{"workers:lease:*"}}, "other"); err != nil {
		t.Errorf("workers:lease:* (own tenant): %v", err)
	}
	submit(admin("globex"), "other")
	if ls := h.Lease(10, "other"); len(ls) != 1 {
		t.Errorf("errand's own runners lease %d of globex's jobs, want 1", len(ls))
	}
}
