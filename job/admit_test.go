package job_test

import (
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/servicetest"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/storage"
)

// Admission (#15) in the jobs service, on every driver, on the test clock.

func flowOp(name string, f errand.Flow) errand.Operation {
	op := servicetest.Op(name)
	op.Flow = f
	return op
}

func TestSubmitRateLimit(t *testing.T) { teststore.Each(t, testSubmitRateLimit) }

func testSubmitRateLimit(t *testing.T, s storage.Store) {
	rate, _ := errand.ParseRate("5/s")
	h := servicetest.New(t, s, flowOp("limited", errand.Flow{RateLimit: &errand.RateLimit{Rate: rate, Burst: 5,
		Key: errand.FlowKey{Kind: errand.KeyPrincipal}}}))
	for range 5 {
		h.Submit("limited", job.SubmitParams{})
	}
	_, _, err := h.Jobs.Submit(h.Ctx, dev, job.SubmitParams{Operation: "limited"})
	servicetest.Code(t, err, errand.ERATELIMITED)
	if e := err.(*errand.Error); e.RetryAfter != 200*time.Millisecond || e.Rate == nil || e.Rate.Policy != "limited" {
		t.Errorf("refusal = %+v, want Retry-After 200ms and the limit's state", e)
	}
	if _, _, err := h.Jobs.Submit(h.Ctx, mallory, job.SubmitParams{Operation: "limited"}); err != nil {
		t.Errorf("another principal: %v", err)
	}
	h.Clock.Advance(400 * time.Millisecond) // two tokens back
	three := []job.SubmitParams{{Operation: "limited"}, {Operation: "limited"}, {Operation: "limited"}}
	jobs, errs, err := h.Jobs.SubmitMany(h.Ctx, dev, three)
	if err != nil {
		t.Fatal(err)
	}
	for i := range three {
		if jobs[i] != nil || errand.ErrorCode(errs[i]) != errand.ERATELIMITED {
			t.Errorf("batch of 3 with 2 tokens: job %d = %v, %v; want rate_limited (all or none)", i, jobs[i], errs[i])
		}
	}
	if _, errs, _ := h.Jobs.SubmitMany(h.Ctx, dev, three[:2]); errs[0] != nil || errs[1] != nil {
		t.Errorf("batch of 2 with 2 tokens: %v", errs)
	}
}

func TestSubmitMaxQueued(t *testing.T) { teststore.Each(t, testSubmitMaxQueued) }

func testSubmitMaxQueued(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, flowOp("bounded", errand.Flow{MaxQueued: &errand.QueueLimit{Limit: 2}}))
	first := h.Submit("bounded", job.SubmitParams{})
	second := h.Submit("bounded", job.SubmitParams{})
	_, _, err := h.Jobs.Submit(h.Ctx, dev, job.SubmitParams{Operation: "bounded"})
	servicetest.Code(t, err, errand.EQUEUEFULL)
	if e := err.(*errand.Error); e.RetryAfter != job.DefaultQueueFullRetry {
		t.Errorf("queue_full while nothing drains: Retry-After %s, want %s", e.RetryAfter, job.DefaultQueueFullRetry)
	}
	j := h.Get(second.ID)
	if err := h.Jobs.Place(h.Ctx, j); err != nil || j.QueuePosition == nil || *j.QueuePosition != 2 || j.EstimatedStartAt != nil {
		t.Errorf("Place(second) = position %v, estimate %v, %v; want 2 and none (nothing drained)", j.QueuePosition, j.EstimatedStartAt, err)
	}
	h.Lease(1, "bounded") // the first starts: the queue drains
	h.Clock.Advance(2 * time.Second)
	j = h.Get(second.ID)
	if err := h.Jobs.Place(h.Ctx, j); err != nil || *j.QueuePosition != 1 || j.EstimatedStartAt == nil {
		t.Errorf("Place(second) after a start = position %v, estimate %v, %v; want 1 and an estimate", j.QueuePosition, j.EstimatedStartAt, err)
	}
	if st, err := h.Jobs.Queue(h.Ctx, "bounded"); err != nil || st.Queued != 1 || st.DrainRate <= 0 {
		t.Errorf("Queue = %+v, %v; want 1 queued and a drain rate", st, err)
	}
	h.Submit("bounded", job.SubmitParams{})
	_, _, err = h.Jobs.Submit(h.Ctx, dev, job.SubmitParams{Operation: "bounded"})
	servicetest.Code(t, err, errand.EQUEUEFULL)
	if j := h.Get(first.ID); j.QueuePosition != nil {
		t.Errorf("a running job has a queue position: %v", *j.QueuePosition)
	}
}

func TestSubmitUnique(t *testing.T) { teststore.Each(t, testSubmitUnique) }

func testSubmitUnique(t *testing.T, s storage.Store) {
	key, _ := errand.ParseFlowKey("input:/report_id")
	h := servicetest.New(t, s, flowOp("once", errand.Flow{Unique: &errand.Unique{Key: key, Window: time.Minute}}))
	submit := func(p errand.Principal, input string) job.Submitted {
		t.Helper()
		sub, err := h.Jobs.SubmitJob(h.Ctx, p, job.SubmitParams{Operation: "once", Input: servicetest.Input(input)})
		if err != nil {
			t.Fatalf("SubmitJob(%s): %v", input, err)
		}
		return sub
	}
	first := submit(dev, `{"report_id":"r1"}`)
	if first.Outcome != job.Created {
		t.Fatalf("first submit: outcome %v, want Created", first.Outcome)
	}
	want := func(what string, sub job.Submitted, outcome job.Outcome, id string) {
		t.Helper()
		if sub.Outcome != outcome || (id != "" && sub.Job.ID != id) || (id == "" && sub.Job.ID == first.Job.ID) {
			t.Errorf("%s: outcome %v, job %s; want %v (%s)", what, sub.Outcome, sub.Job.ID, outcome, id)
		}
	}
	want("a duplicate", submit(dev, `{"report_id":"r1","x":1}`), job.Duplicate, first.Job.ID)
	want("another tenant's", submit(mallory, `{"report_id":"r1"}`), job.Created, "")
	want("no key", submit(dev, `{}`), job.Created, "")
	l := h.Lease(1, "once")
	if _, err := h.Queue.Complete(h.Ctx, l[0].ID, servicetest.Input(`{}`)); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(59 * time.Second)
	want("a duplicate within the window", submit(dev, `{"report_id":"r1"}`), job.Duplicate, first.Job.ID)
	h.Clock.Advance(2 * time.Second)
	want("after the window", submit(dev, `{"report_id":"r1"}`), job.Created, "")
}
