package job_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/storage"
)

// TestListTimeBudget: a list that passes its time budget is answered
// unavailable with a Retry-After, not held on to.
func TestListTimeBudget(t *testing.T) { teststore.Each(t, testListTimeBudget) }

func testListTimeBudget(t *testing.T, s storage.Store) {
	jobs, err := job.NewService(s, event.NewHub(), []errand.Operation{{Name: "a"}}, &job.Config{ListTimeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = jobs.List(context.Background(), errand.DevPrincipal, job.ListParams{Status: errand.StatusFailed})
	var e *errand.Error
	if !errors.As(err, &e) || e.Code != errand.EUNAVAILABLE || e.RetryAfter <= 0 {
		t.Fatalf("List past its time budget = %v, want unavailable with a Retry-After", err)
	}
}
