package storagetest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// budgetTests are the suite's tests of byte budgets and of the log's head.
var budgetTests = map[string]func(*testing.T, storage.Store){
	"ListJobsBytes":       testListJobsBytes,
	"QueuedJobsBytes":     testQueuedJobsBytes,
	"ListEventsBytes":     testListEventsBytes,
	"ListJobsOwnersPaged": testListJobsOwnersPaged,
	"LogHead":             testLogHead,
}

// padded is a JSON string of n bytes.
func padded(n int) json.RawMessage { return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`) }

// sizedJobs stores queued jobs (Job) whose inputs are the given sizes in
// bytes, made a millisecond apart: ids and run_at rise in this order.
func sizedJobs(t *testing.T, s storage.Store, sizes ...int) []*errand.Job {
	t.Helper()
	var jobs []*errand.Job
	for i, n := range sizes {
		j := Job("job_budget_" + string(rune('a'+i)))
		j.Input = padded(n)
		j.CreatedAt, j.RunAt = T0.Add(time.Duration(i)*time.Millisecond), T0.Add(time.Duration(i)*time.Millisecond)
		jobs = append(jobs, j)
	}
	insertJobs(t, s, jobs...)
	return jobs
}

// budgetCases are byte budgets over items of 100, 300, 50 and 1000 bytes, and
// how many a page returns: items while those before hold less than the
// budget, so always the first.
var budgetCases = []struct {
	maxBytes int64
	want     int
}{{0, 4}, {1, 1}, {100, 1}, {101, 2}, {400, 2}, {401, 3}, {450, 3}, {451, 4}, {1 << 20, 4}}

func testListJobsBytes(t *testing.T, s storage.Store) {
	jobs := sizedJobs(t, s, 1000, 50, 300, 100) // listed newest first: 100, 300, 50, 1000
	slices.Reverse(jobs)
	for _, c := range budgetCases {
		got, err := s.ListJobs(ctx, storage.ListJobsParams{Tenant: "acme", Limit: 10, MaxBytes: c.maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(jobIDs(got), jobIDs(jobs[:c.want])) {
			t.Errorf("ListJobs(MaxBytes %d) = %v, want the newest %d", c.maxBytes, jobIDs(got), c.want)
		}
	}
	if got, _ := s.ListJobs(ctx, storage.ListJobsParams{Tenant: "acme", Limit: 2, MaxBytes: 1 << 20}); len(got) != 2 {
		t.Errorf("ListJobs(Limit 2) = %d jobs: the limit still counts", len(got))
	}
	got, _ := s.ListJobs(ctx, storage.ListJobsParams{Tenant: "acme", Before: jobs[1].ID, Limit: 10, MaxBytes: 50})
	if !slices.Equal(jobIDs(got), jobIDs(jobs[2:3])) {
		t.Errorf("ListJobs(Before, MaxBytes 50) = %v, want %v", jobIDs(got), jobIDs(jobs[2:3]))
	}
}

func testQueuedJobsBytes(t *testing.T, s storage.Store) {
	jobs := sizedJobs(t, s, 100, 300, 50, 1000)   // queued in this order (same priority, run_at rising)
	for _, tenant := range []string{"", "acme"} { // every tenant's, and one tenant's
		for _, c := range budgetCases {
			var got []*errand.Job
			// Each read rolls back, so every case sees all four queued.
			err := s.WithTx(ctx, func(tx storage.Tx) error {
				var err error
				if got, err = tx.QueuedJobs(tenant, "report", 10, c.maxBytes); err != nil {
					return err
				}
				return errRollback
			})
			if err != errRollback {
				t.Fatal(err)
			}
			if !slices.Equal(jobIDs(got), jobIDs(jobs[:c.want])) {
				t.Errorf("QueuedJobs(%q, maxBytes %d) = %v, want the first %d", tenant, c.maxBytes, jobIDs(got), c.want)
			}
		}
	}
}

var errRollback = errand.Errorf(errand.ECONFLICT, "roll back")

func testListEventsBytes(t *testing.T, s storage.Store) {
	var evs []*errand.Event
	for _, n := range []int{100, 300, 50, 1000} {
		evs = append(evs, Event("orders", string(padded(n))))
	}
	seqs := insertEvents(t, s, evs...)
	for _, c := range budgetCases {
		got, err := s.ListEvents(ctx, storage.ListEventsParams{Tenant: "acme", Stream: "orders", Limit: 10, MaxBytes: c.maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want || got[0].Seq != seqs[0] || got[len(got)-1].Seq != seqs[c.want-1] {
			t.Errorf("ListEvents(MaxBytes %d) = %d events, want the first %d", c.maxBytes, len(got), c.want)
		}
	}
	got, _ := s.ListEvents(ctx, storage.ListEventsParams{Tenant: "acme", Stream: "orders", After: seqs[1], Limit: 10, MaxBytes: 10})
	if len(got) != 1 || got[0].Seq != seqs[2] {
		t.Errorf("ListEvents(After, MaxBytes 10) = %d events, want the third", len(got))
	}
}

// testListJobsOwnersPaged: a list of an owner's jobs with a legacy owner as well
// holds both owners' jobs, merged newest first, and pages on.
func testListJobsOwnersPaged(t *testing.T, s storage.Store) {
	owners := []string{"key_me", "legacy:me", "key_other"}
	var jobs []*errand.Job
	for i := range 9 {
		j := Job("job_owners_" + string(rune('a'+i)))
		j.Owner = owners[i%3]
		jobs = append(jobs, j)
	}
	insertJobs(t, s, jobs...)
	var want []string
	for i := len(jobs) - 1; i >= 0; i-- {
		if i%3 != 2 {
			want = append(want, jobs[i].ID)
		}
	}
	var got []string
	before := ""
	for range 10 {
		page, err := s.ListJobs(ctx, storage.ListJobsParams{Tenant: "acme", Owner: "key_me", LegacyOwner: "legacy:me",
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
		t.Fatalf("pages of key_me's and legacy:me's jobs = %v, want %v", got, want)
	}
}

// testLogHead: the head is the highest cursor handed out, in any stream, and
// stays there when retention deletes the events.
func testLogHead(t *testing.T, s storage.Store) {
	if head, err := s.LogHead(ctx); err != nil || head != 0 {
		t.Fatalf("LogHead of an empty log = %d, %v; want 0", head, err)
	}
	past := T0.Add(-time.Hour)
	var evs []*errand.Event
	for _, stream := range []string{"a", "b", "a"} {
		e := Event(stream, `{}`)
		e.ExpiresAt = &past
		evs = append(evs, e)
	}
	seqs := insertEvents(t, s, evs...)
	last := seqs[len(seqs)-1]
	if head, err := s.LogHead(ctx); err != nil || head != last {
		t.Fatalf("LogHead = %d, %v; want %d", head, err, last)
	}
	tx(t, s, func(tx storage.Tx) error {
		_, err := tx.ExpireEvents(T0, 100)
		return err
	})
	if head, err := s.LogHead(ctx); err != nil || head != last {
		t.Fatalf("LogHead after retention deleted every event = %d, %v; want %d still", head, err, last)
	}
}
