package storagetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// budgetTests are the suite's tests of byte budgets and of the log's head,
// called on the driver's methods directly.
var budgetTests = map[string]func(*testing.T, func(*testing.T) storage.Store){
	"ListJobsBytes":   testListJobsBytes,
	"QueuedJobsBytes": testQueuedJobsBytes,
	"ListEventsBytes": testListEventsBytes,
	"LogHead":         testLogHead,
	"ListJobsOwners":  testListJobsOwners,
}

// sizedJobs stores queued jobs of tenant "t", op "a", whose inputs are the
// given sizes in bytes (oldest first, ids rising).
func sizedJobs(t *testing.T, s storage.Store, sizes ...int) []*errand.Job {
	t.Helper()
	now := NewClock().Now()
	var ids errand.IDGenerator
	var jobs []*errand.Job
	for i, n := range sizes {
		at := now.Add(time.Duration(i) * time.Millisecond)
		jobs = append(jobs, &errand.Job{ID: ids.New("job", at), Tenant: "t", Owner: "u", Operation: "a",
			Status: errand.StatusQueued, Input: json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`),
			MaxAttempts: 3, TimeoutSeconds: 60, CreatedAt: at, RunAt: at})
	}
	tx(t, s, func(tx storage.Tx) error {
		for _, j := range jobs {
			if err := tx.InsertJob(context.Background(), j); err != nil {
				return err
			}
		}
		return nil
	})
	return jobs
}

// budgetCases are byte budgets over jobs or events of 100, 300, 50 and 1000
// bytes, and how many a page returns: items while those before hold less
// than the budget, so always the first.
var budgetCases = []struct {
	maxBytes int64
	want     int
}{{0, 4}, {1, 1}, {100, 1}, {101, 2}, {400, 2}, {401, 3}, {450, 3}, {451, 4}, {1 << 20, 4}}

func testListJobsBytes(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	jobs := sizedJobs(t, s, 1000, 50, 300, 100) // listed newest first: 100, 300, 50, 1000
	slices.Reverse(jobs)
	for _, c := range budgetCases {
		got, err := s.ListJobs(context.Background(), storage.ListJobsParams{Tenant: "t", Limit: 10, MaxBytes: c.maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(jobIDs(got), jobIDs(jobs[:c.want])) {
			t.Errorf("ListJobs(MaxBytes %d) = %d jobs, want the newest %d", c.maxBytes, len(got), c.want)
		}
	}
	got, _ := s.ListJobs(context.Background(), storage.ListJobsParams{Tenant: "t", Limit: 2, MaxBytes: 1 << 20})
	if len(got) != 2 {
		t.Errorf("ListJobs(Limit 2) = %d jobs: the limit still counts", len(got))
	}
	got, _ = s.ListJobs(context.Background(), storage.ListJobsParams{Tenant: "t", Before: jobs[1].ID, Limit: 10, MaxBytes: 50})
	if !slices.Equal(jobIDs(got), jobIDs(jobs[2:3])) {
		t.Errorf("ListJobs(Before, MaxBytes 50) = %v, want %v", jobIDs(got), jobIDs(jobs[2:3]))
	}
}

func testQueuedJobsBytes(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	jobs := sizedJobs(t, s, 100, 300, 50, 1000) // queued in this order (same priority, run_at rising)
	for _, tenant := range []string{"", "t"} {  // every tenant's, and one tenant's
		for _, c := range budgetCases {
			var got []*errand.Job
			// Each read rolls back, so every case sees all four queued.
			err := s.WithTx(context.Background(), func(tx storage.Tx) error {
				var err error
				if got, err = tx.QueuedJobs(context.Background(), tenant, "a", 10, c.maxBytes); err != nil {
					return err
				}
				return errRollback
			})
			if err != errRollback {
				t.Fatal(err)
			}
			if !slices.Equal(jobIDs(got), jobIDs(jobs[:c.want])) {
				t.Errorf("QueuedJobs(%q, maxBytes %d) = %d jobs, want the first %d", tenant, c.maxBytes, len(got), c.want)
			}
		}
	}
}

var errRollback = fmt.Errorf("roll back")

func testListEventsBytes(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	var events []*errand.Event
	for _, n := range []int{100, 300, 50, 1000} {
		events = append(events, &errand.Event{Stream: "orders", Tenant: "t", Type: "x", Time: NewClock().Now(),
			Data: json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)})
	}
	tx(t, s, func(tx storage.Tx) error {
		for _, e := range events {
			if err := tx.InsertEvent(context.Background(), e); err != nil {
				return err
			}
		}
		return nil
	})
	for _, c := range budgetCases {
		got, err := s.ListEvents(context.Background(), storage.ListEventsParams{Tenant: "t", Stream: "orders", Limit: 10, MaxBytes: c.maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want || got[0].Seq != events[0].Seq || got[len(got)-1].Seq != events[c.want-1].Seq {
			t.Errorf("ListEvents(MaxBytes %d) = %d events, want the first %d", c.maxBytes, len(got), c.want)
		}
	}
	got, _ := s.ListEvents(context.Background(), storage.ListEventsParams{Tenant: "t", Stream: "orders", After: events[1].Seq,
		Limit: 10, MaxBytes: 10})
	if len(got) != 1 || got[0].Seq != events[2].Seq {
		t.Errorf("ListEvents(After, MaxBytes 10) = %d events, want the third", len(got))
	}
}

// testLogHead: the head is the highest cursor handed out, in any stream, and
// stays there when retention deletes the events.
func testLogHead(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := context.Background()
	if head, err := s.LogHead(ctx); err != nil || head != 0 {
		t.Fatalf("LogHead of an empty log = %d, %v; want 0", head, err)
	}
	past := NewClock().Now().Add(-time.Hour)
	var last *errand.Event
	tx(t, s, func(tx storage.Tx) error {
		for _, stream := range []string{"a", "b", "a"} {
			last = &errand.Event{Stream: stream, Tenant: "t", Type: "x", Time: past, Data: json.RawMessage(`{}`), ExpiresAt: &past}
			if err := tx.InsertEvent(ctx, last); err != nil {
				return err
			}
		}
		return nil
	})
	if head, err := s.LogHead(ctx); err != nil || head != last.Seq {
		t.Fatalf("LogHead = %d, %v; want %d", head, err, last.Seq)
	}
	tx(t, s, func(tx storage.Tx) error {
		_, err := tx.ExpireEvents(ctx, NewClock().Now(), 100)
		return err
	})
	if head, err := s.LogHead(ctx); err != nil || head != last.Seq {
		t.Fatalf("LogHead after retention deleted every event = %d, %v; want %d still", head, err, last.Seq)
	}
}

// testListJobsOwners: a list of an owner's jobs with a legacy owner as well
// holds both owners' jobs, merged newest first, and pages on.
func testListJobsOwners(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	jobs := sizedJobs(t, s, 10, 10, 10, 10, 10, 10, 10, 10, 10)
	owners := []string{"me", "legacy:me", "other"}
	tx(t, s, func(tx storage.Tx) error {
		for i, j := range jobs {
			j.Owner = owners[i%3]
			if err := tx.DeleteJob(context.Background(), j.ID); err != nil {
				return err
			}
			if err := tx.InsertJob(context.Background(), j); err != nil {
				return err
			}
		}
		return nil
	})
	var want []string
	for i := len(jobs) - 1; i >= 0; i-- {
		if i%3 != 2 {
			want = append(want, jobs[i].ID)
		}
	}
	var got []string
	before := ""
	for range 10 {
		page, err := s.ListJobs(context.Background(), storage.ListJobsParams{Tenant: "t", Owner: "me", LegacyOwner: "legacy:me",
			Before: before, Limit: 4, MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, jobIDs(page)...)
		if len(page) < 4 {
			break
		}
		before = page[len(page)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages of me's and legacy:me's jobs = %v, want %v", got, want)
	}
}
