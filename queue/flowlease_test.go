package queue_test

import (
	"encoding/json"
	"testing"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/servicetest"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/storage"
)

func TestFairLeaseTakesEachJobOnce(t *testing.T) { teststore.Each(t, testFairLeaseTakesEachJobOnce) }

// testFairLeaseTakesEachJobOnce: a fair lease whose keys run short of their
// share fills it from the others in later rounds, and a per-key limit's
// second read, without taking a job twice; jobs without a fair key (queued
// before fairness) are leased too.
func testFairLeaseTakesEachJobOnce(t *testing.T, s storage.Store) {
	fk, _ := errand.ParseFlowKey("input:/t")
	ck, _ := errand.ParseFlowKey("input:/c")
	fair := servicetest.Op("fair")
	fair.Flow.Fairness = &errand.Fairness{Key: fk}
	keyed := servicetest.Op("keyed")
	keyed.Flow.ConcurrencyKey = &errand.ConcurrencyKey{Key: ck, Limit: 2}
	h := servicetest.New(t, s, fair, keyed)
	h.Submit("fair", job.SubmitParams{Input: json.RawMessage(`{"t":"a"}`)})
	for range 10 {
		h.Submit("fair", job.SubmitParams{Input: json.RawMessage(`{"t":"b"}`)})
	}
	for _, c := range []string{"x", "y", "x", "x", "y", "z"} {
		h.Submit("keyed", job.SubmitParams{Input: json.RawMessage(`{"c":"` + c + `"}`)})
	}
	check := func(ls []errand.Lease, want int, what string) {
		t.Helper()
		seen := map[string]bool{}
		for _, l := range ls {
			if seen[l.Job.ID] {
				t.Errorf("%s: job %s leased twice in one lease", what, l.Job.ID)
			}
			seen[l.Job.ID] = true
			if j := h.Get(l.Job.ID); j.Status != errand.StatusRunning || j.LeaseID() != l.ID {
				t.Errorf("%s: job %s is %s with lease %q, want running under %q", what, l.Job.ID, j.Status, j.LeaseID(), l.ID)
			}
		}
		if len(ls) != want {
			t.Errorf("%s: %d leases, want %d", what, len(ls), want)
		}
	}
	check(h.Lease(6, "fair"), 6, "fair lease of 6 (a has 1, b 10)")
	check(h.Lease(10, "keyed"), 5, "keyed lease of 10 (x 3, y 2, z 1 at limit 2)")
}
