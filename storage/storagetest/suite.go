package storagetest

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/queue"
	"github.com/errandhq/errand/storage"
)

// Exercise runs the whole suite; open returns a new, empty store for one test
// (closed by the test's cleanup).
func Exercise(t *testing.T, open func(t *testing.T) storage.Store) {
	tests := map[string]func(*testing.T, func(*testing.T) storage.Store){
		"SubmitAndGet":          testSubmitAndGet,
		"TenantIsolation":       testTenantIsolation,
		"LeaseOrder":            testLeaseOrder,
		"LeaseAcrossOperations": testLeaseAcrossOperations,
		"Scheduled":             testScheduled,
		"ConcurrencyLimit":      testConcurrencyLimit,
		"LeaseExpiry":           testLeaseExpiry,
		"Timeout":               testTimeout,
		"RetryBackoff":          testRetryBackoff,
		"FailWithoutRetry":      testFailWithoutRetry,
		"Idempotency":           testIdempotency,
		"CancelQueued":          testCancelQueued,
		"CancelRunning":         testCancelRunning,
		"ManualRetry":           testManualRetry,
		"Release":               testRelease,
		"Delete":                testDelete,
		"EventsOrder":           testEventsOrder,
		"Retention":             testRetention,
		"ListPages":             testListPages,
		"BatchComplete":         testBatchComplete,
		"GroupCommitIsolation":  testGroupCommitIsolation,
		"GroupCommitModel":      testGroupCommitModel,
		"ConcurrentSubmits":     testConcurrentSubmits,
		"WaitForResult":         testWaitForResult,
		"LongPollWakes":         testLongPollWakes,
		"EventExpiry":           testEventExpiry,
		"BulkRoundTrip":         testBulkRoundTrip,
	}
	maps.Copy(tests, webhookTests)
	maps.Copy(tests, accessTests)
	maps.Copy(tests, tenancyTests)
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, open)
		})
	}
}

func testSubmitAndGet(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	j := h.Submit("report", job.SubmitParams{Input: Input(`{"type":"monthly"}`), Metadata: map[string]string{"k": "v"}})
	got := h.Get(j.ID)
	if got.Status != errand.StatusQueued || string(got.Input) != `{"type":"monthly"}` || got.Metadata["k"] != "v" {
		t.Fatalf("Get = %+v, want queued with the input and metadata", got)
	}
	if got.MaxAttempts != 3 || got.TimeoutSeconds != 600 || got.Tenant != Dev.Tenant || got.Owner != Dev.Subject {
		t.Fatalf("defaults = attempts %d timeout %d tenant %q owner %q", got.MaxAttempts, got.TimeoutSeconds, got.Tenant, got.Owner)
	}
	if !got.CreatedAt.Equal(h.Clock.Now()) {
		t.Fatalf("created_at = %v, want %v", got.CreatedAt, h.Clock.Now())
	}
	_, err := h.Jobs.Get(h.Ctx, Dev, "job_01M81FYDCTE1X91SVCMDMS18K4")
	Code(t, err, errand.EJOBNOTFOUND)
}

func testTenantIsolation(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	_, err := h.Jobs.Get(h.Ctx, Other, j.ID)
	Code(t, err, errand.EJOBNOTFOUND)
	_, err = h.Jobs.Cancel(h.Ctx, Other, j.ID)
	Code(t, err, errand.EJOBNOTFOUND)
	_, err = h.Jobs.Events(h.Ctx, Other, j.ID, "", 10)
	Code(t, err, errand.EJOBNOTFOUND)
	list, _, err := h.Jobs.List(h.Ctx, Other, job.ListParams{})
	if err != nil || len(list) != 0 {
		t.Fatalf("List(other tenant) = %d jobs, %v; want none", len(list), err)
	}
}

func testLeaseOrder(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
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

func testLeaseAcrossOperations(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("a"), Op("b"))
	prio := 5
	a := h.Submit("a", job.SubmitParams{})
	h.Clock.Advance(time.Millisecond)
	b := h.Submit("b", job.SubmitParams{Priority: &prio})
	ls := h.Lease(2, "a", "b")
	if len(ls) != 2 || ls[0].Job.ID != b.ID || ls[1].Job.ID != a.ID {
		t.Fatalf("Lease(a, b) = %v, want b (priority 5) then a", leaseIDs(ls))
	}
	_, err := h.Queue.Lease(h.Ctx, queue.LeaseParams{Operations: []string{"nope"}})
	Code(t, err, errand.EOPNOTFOUND)
}

func testScheduled(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
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
		t.Fatalf("Lease after run_at = %v, want %s", leaseIDs(ls), j.ID)
	}
}

func testConcurrencyLimit(t *testing.T, open func(*testing.T) storage.Store) {
	op := Op("report")
	op.Concurrency = 2
	h := NewHarness(t, open(t), op)
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
	if _, err := h.Queue.Complete(h.Ctx, ls[0].ID, Input(`{}`)); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if more := h.Lease(5, "report"); len(more) != 1 {
		t.Fatalf("Lease after one completed = %d leases, want 1", len(more))
	}
}

func testLeaseExpiry(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	ls, err := h.Queue.Lease(h.Ctx, queue.LeaseParams{Operations: []string{"report"}, LeaseSeconds: 5, Worker: "w1"})
	if err != nil || len(ls) != 1 {
		t.Fatalf("Lease = %v, %v", leaseIDs(ls), err)
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
	Code(t, err, errand.ELEASEEXPIRED)
	h.Maint.Pass(h.Ctx, h.Clock.Now().Add(time.Millisecond))
	got := h.Get(j.ID)
	if got.Status != errand.StatusScheduled || got.Attempt != 1 || got.Error == nil || got.Error.Code != errand.ECODELEASEEXPIRED {
		t.Fatalf("after expiry: status %s attempt %d error %+v; want scheduled, attempt 1, lease_expired", got.Status, got.Attempt, got.Error)
	}
	h.Clock.Advance(time.Minute)
	h.Maint.Pass(h.Ctx, h.Clock.Now())
	again := h.Lease(1, "report")
	if len(again) != 1 || again[0].Job.Attempt != 2 {
		t.Fatalf("re-lease = %v, want the job at attempt 2", leaseIDs(again))
	}
	_, err = h.Queue.Complete(h.Ctx, ls[0].ID, nil)
	Code(t, err, errand.ELEASEEXPIRED)
	if _, err := h.Queue.Complete(h.Ctx, again[0].ID, Input(`{"ok":true}`)); err != nil {
		t.Fatalf("Complete with the new lease: %v", err)
	}
}

func testTimeout(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
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

func testRetryBackoff(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report")) // 3 attempts, initial 10s, max 1m
	j := h.Submit("report", job.SubmitParams{})
	for attempt := 1; attempt <= 3; attempt++ {
		ls := h.Lease(1, "report")
		if len(ls) != 1 || ls[0].Job.Attempt != attempt {
			t.Fatalf("attempt %d: leases %v", attempt, leaseIDs(ls))
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

func testFailWithoutRetry(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	h.Submit("report", job.SubmitParams{})
	ls := h.Lease(1, "report")
	no := false
	got, err := h.Queue.Fail(h.Ctx, ls[0].ID, queue.FailParams{Retry: &no})
	if err != nil || got.Status != errand.StatusFailed || got.Attempt != 1 {
		t.Fatalf("Fail(retry=false) = %s attempt %d, %v; want failed after 1 attempt", got.Status, got.Attempt, err)
	}
}

func testIdempotency(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	sp := job.SubmitParams{Operation: "report", Input: Input(`{"a": 1}`), IdempotencyKey: "k1"}
	first, replayed, err := h.Jobs.Submit(h.Ctx, Dev, sp)
	if err != nil || replayed {
		t.Fatalf("first Submit: replayed %v, %v", replayed, err)
	}
	sp.Input = Input(`{"a":1}`) // same JSON, other white space
	again, replayed, err := h.Jobs.Submit(h.Ctx, Dev, sp)
	if err != nil || !replayed || again.ID != first.ID {
		t.Fatalf("repeat Submit = %s replayed %v, %v; want %s replayed", again.ID, replayed, err, first.ID)
	}
	sp.Input = Input(`{"a":2}`)
	_, _, err = h.Jobs.Submit(h.Ctx, Dev, sp)
	Code(t, err, errand.EIDEMPOTENCY)
	other, replayed, err := h.Jobs.Submit(h.Ctx, Other, sp)
	if err != nil || replayed || other.ID == first.ID {
		t.Fatalf("same key, other tenant = %s replayed %v, %v; want a new job", other.ID, replayed, err)
	}
}

func testCancelQueued(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	got, err := h.Jobs.Cancel(h.Ctx, Dev, j.ID)
	if err != nil || got.Status != errand.StatusCanceled || got.FinishedAt == nil {
		t.Fatalf("Cancel(queued) = %s, %v; want canceled", got.Status, err)
	}
	if ls := h.Lease(1, "report"); len(ls) != 0 {
		t.Fatalf("leased a canceled job")
	}
	if again, err := h.Jobs.Cancel(h.Ctx, Dev, j.ID); err != nil || again.Status != errand.StatusCanceled {
		t.Fatalf("Cancel twice = %v, want canceled again without error", err)
	}
}

func testCancelRunning(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	ls := h.Lease(1, "report")
	got, err := h.Jobs.Cancel(h.Ctx, Dev, j.ID)
	if err != nil || got.Status != errand.StatusRunning || !got.CancelRequested {
		t.Fatalf("Cancel(running) = %s cancel_requested %v, %v", got.Status, got.CancelRequested, err)
	}
	hb, err := h.Queue.Heartbeat(h.Ctx, ls[0].ID, queue.HeartbeatParams{})
	if err != nil || !hb.CancelRequested {
		t.Fatalf("Heartbeat after cancel = %+v, %v; want cancel_requested", hb, err)
	}
	done, err := h.Queue.Fail(h.Ctx, ls[0].ID, queue.FailParams{})
	if err != nil || done.Status != errand.StatusCanceled {
		t.Fatalf("Fail after cancel = %s, %v; want canceled", done.Status, err)
	}
	k := h.Submit("report", job.SubmitParams{})
	h.Lease(1, "report")
	h.Queue.Complete(h.Ctx, h.leaseOf(k.ID), nil)
	_, err = h.Jobs.Cancel(h.Ctx, Dev, k.ID)
	Code(t, err, errand.ECONFLICT)
}

// leaseOf finds the lease id of a running job (the test holds it).
func (h *Harness) leaseOf(id string) string { return h.Get(id).LeaseID() }

func testManualRetry(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	_, err := h.Jobs.Retry(h.Ctx, Dev, j.ID)
	Code(t, err, errand.ECONFLICT)
	h.Jobs.Cancel(h.Ctx, Dev, j.ID)
	got, err := h.Jobs.Retry(h.Ctx, Dev, j.ID)
	if err != nil || got.Status != errand.StatusQueued || got.FinishedAt != nil {
		t.Fatalf("Retry(canceled) = %s, %v; want queued", got.Status, err)
	}
	if ls := h.Lease(1, "report"); len(ls) != 1 || ls[0].Job.ID != j.ID {
		t.Fatalf("the retried job was not leased")
	}
}

func testDelete(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	Code(t, h.Jobs.Delete(h.Ctx, Dev, j.ID), errand.ENOTTERMINAL)
	h.Jobs.Cancel(h.Ctx, Dev, j.ID)
	if err := h.Jobs.Delete(h.Ctx, Dev, j.ID); err != nil {
		t.Fatalf("Delete(canceled): %v", err)
	}
	_, err := h.Jobs.Get(h.Ctx, Dev, j.ID)
	Code(t, err, errand.EJOBNOTFOUND)
	evs, _ := h.Store.ListEvents(h.Ctx, storage.ListEventsParams{Tenant: Dev.Tenant, Stream: j.ID, Limit: 10})
	if len(evs) != 0 {
		t.Fatalf("events after Delete = %d, want 0", len(evs))
	}
}

func testEventsOrder(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	ls := h.Lease(1, "report")
	h.Queue.Heartbeat(h.Ctx, ls[0].ID, queue.HeartbeatParams{Progress: &errand.Progress{Percent: 40, Message: "charts"}})
	h.Queue.Complete(h.Ctx, ls[0].ID, Input(`{"url":"/r.pdf"}`))
	evs, err := h.Jobs.Events(h.Ctx, Dev, j.ID, "", 100)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	want := []string{errand.EventJobCreated, errand.EventJobStarted, errand.EventJobProgress, errand.EventJobSucceeded}
	var types []string
	for i, e := range evs {
		types = append(types, e.Type)
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Fatalf("event %d seq %d not after %d", i, e.Seq, evs[i-1].Seq)
		}
	}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("event types = %v, want %v", types, want)
	}
	after, err := h.Jobs.Events(h.Ctx, Dev, j.ID, evs[1].Cursor(), 100)
	if err != nil || len(after) != 2 || after[0].Seq != evs[2].Seq {
		t.Fatalf("Events(after %s) = %d events, %v; want the last 2", evs[1].Cursor(), len(after), err)
	}
	_, err = h.Jobs.Events(h.Ctx, Dev, j.ID, "garbage", 100)
	Code(t, err, errand.ECURSOR)
	heard := h.Commits.Events()
	if len(heard) != 4 || heard[3].Type != errand.EventJobSucceeded {
		t.Fatalf("notifier heard %d events, want the 4 committed ones in order", len(heard))
	}
}

func testRetention(t *testing.T, open func(*testing.T) storage.Store) {
	op := Op("report")
	op.Retention = time.Hour
	h := NewHarness(t, open(t), op)
	done := h.Submit("report", job.SubmitParams{})
	h.Jobs.Cancel(h.Ctx, Dev, done.ID)
	pending := h.Submit("report", job.SubmitParams{})
	h.Clock.Advance(59 * time.Minute)
	if n, err := h.Maint.Clean(h.Ctx, h.Clock.Now()); err != nil || n != 0 {
		t.Fatalf("Clean before retention ended = %d, %v; want 0", n, err)
	}
	h.Clock.Advance(2 * time.Minute)
	if n, err := h.Maint.Clean(h.Ctx, h.Clock.Now()); err != nil || n != 1 {
		t.Fatalf("Clean after retention = %d, %v; want 1", n, err)
	}
	_, err := h.Jobs.Get(h.Ctx, Dev, done.ID)
	Code(t, err, errand.EJOBNOTFOUND)
	h.Get(pending.ID) // unfinished jobs are kept
}

func testListPages(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("a"), Op("b"))
	var ids []string
	for i := range 7 {
		op := "a"
		if i%2 == 1 {
			op = "b"
		}
		ids = append(ids, h.Submit(op, job.SubmitParams{}).ID)
		h.Clock.Advance(time.Millisecond)
	}
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		list, next, err := h.Jobs.List(h.Ctx, Dev, job.ListParams{Limit: 3, Cursor: cursor})
		if err != nil || page > 5 {
			t.Fatalf("List page %d: %v", page, err)
		}
		for _, j := range list {
			got = append(got, j.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	for i := range ids {
		if got[i] != ids[len(ids)-1-i] {
			t.Fatalf("listed %v, want newest first %v", got, ids)
		}
	}
	bs, _, _ := h.Jobs.List(h.Ctx, Dev, job.ListParams{Operation: "b"})
	if len(bs) != 3 {
		t.Fatalf("List(operation=b) = %d, want 3", len(bs))
	}
	h.Jobs.Cancel(h.Ctx, Dev, ids[0])
	cs, _, _ := h.Jobs.List(h.Ctx, Dev, job.ListParams{Status: errand.StatusCanceled})
	if len(cs) != 1 || cs[0].ID != ids[0] {
		t.Fatalf("List(status=canceled) = %d jobs, want 1", len(cs))
	}
	_, _, err := h.Jobs.List(h.Ctx, Dev, job.ListParams{Cursor: "bm90IGEgY3Vyc29y"})
	Code(t, err, errand.ECURSOR)
	_, _, err = h.Jobs.List(h.Ctx, Dev, job.ListParams{Status: "done"})
	Code(t, err, errand.EINVALID)
}

func testBatchComplete(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	for range 3 {
		h.Submit("report", job.SubmitParams{})
	}
	ls := h.Lease(3, "report")
	cs := []queue.Completion{{LeaseID: ls[0].ID}, {LeaseID: "lease_bogus"}, {LeaseID: ls[1].ID, Result: Input(`1`)}, {LeaseID: ls[0].ID}}
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

func testGroupCommitIsolation(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	var wg sync.WaitGroup
	boom := errors.New("boom")
	errs := make([]error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.Store.WithTx(h.Ctx, func(tx storage.Tx) error {
				j := &errand.Job{ID: errand.NewID("job"), Tenant: "t", Owner: "o", Operation: "report", Status: errand.StatusQueued,
					Input: Input(`{}`), MaxAttempts: 1, TimeoutSeconds: 1, CreatedAt: h.Clock.Now(), RunAt: h.Clock.Now()}
				if err := tx.InsertJob(j); err != nil {
					return err
				}
				if i%2 == 1 {
					return boom // its insert must vanish, the others must stay
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if want := i%2 == 1; (err == boom) != want {
			t.Fatalf("tx %d: err %v, want boom=%v", i, err, want)
		}
	}
	list, _ := h.Store.ListJobs(h.Ctx, storage.ListJobsParams{Tenant: "t", Limit: 100})
	if len(list) != 25 {
		t.Fatalf("jobs after 25 good and 25 failed transactions = %d, want 25", len(list))
	}
	if err := h.Store.WithTx(h.Ctx, func(storage.Tx) error { panic("bad caller") }); err == nil {
		t.Fatalf("a panicking transaction returned no error")
	}
	h.Submit("report", job.SubmitParams{}) // the store still works
}

func testConcurrentSubmits(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	const n = 400
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 40 {
				j, _, err := h.Jobs.Submit(h.Ctx, Dev, job.SubmitParams{Operation: "report"})
				if err != nil {
					t.Errorf("Submit: %v", err)
					return
				}
				ids <- j.ID
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %s given twice", id)
		}
		seen[id] = true
		h.Get(id)
	}
	leased := 0
	for {
		ls := h.Lease(100, "report")
		if len(ls) == 0 {
			break
		}
		leased += len(ls)
	}
	if leased != n {
		t.Fatalf("leased %d jobs, want %d", leased, n)
	}
}

func testWaitForResult(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	got := make(chan *errand.Job, 1)
	go func() {
		w, _ := h.Jobs.Wait(h.Ctx, Dev, j.ID, 10*time.Second)
		got <- w
	}()
	ls := h.Lease(1, "report")
	h.Queue.Complete(h.Ctx, ls[0].ID, Input(`"done"`))
	select {
	case w := <-got:
		if w == nil || w.Status != errand.StatusSucceeded || string(w.Result) != `"done"` {
			t.Fatalf("Wait = %+v, want the succeeded job", w)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Wait did not return within 5s of completion")
	}
	start := time.Now()
	k := h.Submit("report", job.SubmitParams{})
	w, err := h.Jobs.Wait(h.Ctx, Dev, k.ID, 100*time.Millisecond)
	if err != nil || w.Status != errand.StatusQueued || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("Wait on an unfinished job = %s after %v, %v; want queued after 100ms", w.Status, time.Since(start), err)
	}
}

func testLongPollWakes(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
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
			t.Fatalf("long poll got %v, want %s", leaseIDs(ls), j.ID)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("long poll woke %v after the submit", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("long poll did not wake within 5s of a submit")
	}
}

func leaseIDs(ls []errand.Lease) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Job.ID)
	}
	return out
}

func testRelease(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	ls := h.Lease(1, "report")
	got, err := h.Queue.Release(h.Ctx, ls[0].ID)
	if err != nil || got.Status != errand.StatusQueued || got.Attempt != 0 {
		t.Fatalf("Release = %s attempt %d, %v; want queued, attempt 0 (not counted)", got.Status, got.Attempt, err)
	}
	again := h.Lease(1, "report")
	if len(again) != 1 || again[0].Job.ID != j.ID || again[0].Job.Attempt != 1 {
		t.Fatalf("after Release, Lease = %v; want the job at attempt 1", leaseIDs(again))
	}
	_, err = h.Queue.Release(h.Ctx, ls[0].ID)
	Code(t, err, errand.ELEASEEXPIRED)
}

func testEventExpiry(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	now := h.Clock.Now()
	soon, later := now.Add(time.Minute), now.Add(time.Hour)
	var seqs []int64
	for i, exp := range []*time.Time{&soon, &soon, &later, nil} {
		e := &errand.Event{Stream: "orders.created", Tenant: "t", Type: "x", Time: now, Data: Input(fmt.Sprint(i)), ExpiresAt: exp}
		if err := h.Store.WithTx(h.Ctx, func(tx storage.Tx) error { return tx.InsertEvent(e) }); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
	}
	if f, _ := h.Store.StreamFloor(h.Ctx, "t", "orders.created"); f != 0 {
		t.Fatalf("floor before expiry = %d, want 0", f)
	}
	var n int
	err := h.Store.WithTx(h.Ctx, func(tx storage.Tx) error {
		var err error
		n, err = tx.ExpireEvents(now.Add(2*time.Minute), 100)
		return err
	})
	if err != nil || n != 2 {
		t.Fatalf("ExpireEvents = %d, %v; want the 2 expired", n, err)
	}
	if f, _ := h.Store.StreamFloor(h.Ctx, "t", "orders.created"); f != seqs[1] {
		t.Fatalf("floor = %d, want %d (the last deleted)", f, seqs[1])
	}
	if f, _ := h.Store.StreamFloor(h.Ctx, "other", "orders.created"); f != 0 {
		t.Fatalf("another tenant's floor = %d, want 0", f)
	}
	left, _ := h.Store.ListEvents(h.Ctx, storage.ListEventsParams{Tenant: "t", Stream: "orders.created", Limit: 10})
	if len(left) != 2 || left[0].Seq != seqs[2] {
		t.Fatalf("events left = %d, want the 2 not expired", len(left))
	}
}
