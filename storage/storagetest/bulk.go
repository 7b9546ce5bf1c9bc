package storagetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// testBulkRoundTrip writes jobs and events in one transaction, a few and then
// many (drivers may send large batches another way, as PostgreSQL does by
// COPY), and reads every field back as written.
func testBulkRoundTrip(t *testing.T, s storage.Store) {
	for _, n := range []int{3, 150} {
		base := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
		jobs := make([]*errand.Job, n)
		events := make([]*errand.Event, n)
		for i := range jobs {
			at := base.Add(time.Duration(i) * time.Millisecond)
			later := at.Add(time.Hour)
			j := &errand.Job{ID: fmt.Sprintf("job_bulk%d_%03d", n, i), Tenant: "acme", Owner: "u1", Operation: "report",
				Status: errand.StatusQueued, Input: json.RawMessage(fmt.Sprintf(`{"i":%d,"s":"<é>"}`, i)),
				MaxAttempts: 3, Priority: i % 5, TimeoutSeconds: 60, CreatedAt: at, RunAt: at, RequestHash: "h"}
			if i%2 == 1 { // every optional field set
				j.Status, j.Attempt, j.CancelRequested = errand.StatusFailed, 2, true
				j.Result = json.RawMessage(`[1,2]`)
				j.Error = &errand.Problem{Code: "handler_error", Detail: "broke"}
				j.Progress = &errand.Progress{Percent: 50, Message: "half"}
				j.Metadata = map[string]string{"k": fmt.Sprint(i)}
				j.CallbackURL, j.LeaseToken, j.Worker = "https://example.com/cb", "tok", "w1"
				j.IdempotencyKey = fmt.Sprintf("key%d_%d", n, i)
				j.StartedAt, j.FinishedAt, j.LeaseExpiresAt, j.ExpiresAt = &at, &later, &later, &later
				j.Artifacts = []errand.Artifact{{Name: "a.txt", ContentType: "text/plain", Size: 3, SHA256: "ab", URL: "/x"}}
			}
			jobs[i] = j
			events[i] = &errand.Event{Stream: j.ID, Tenant: "acme", Type: errand.EventJobCreated, Time: at,
				Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
		}
		err := s.WithTx(ctx, func(tx storage.Tx) error {
			for i, j := range jobs {
				if err := tx.InsertJob(j); err != nil {
					return err
				}
				if err := tx.InsertEvent(events[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%d jobs: %v", n, err)
		}
		for i, want := range jobs {
			got, err := s.GetJob(ctx, "acme", want.ID)
			if err != nil {
				t.Fatalf("job %s: %v", want.ID, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("batch of %d, job %d read back as\n%+v\nwritten as\n%+v", n, i, got, want)
			}
			evs, err := s.ListEvents(ctx, storage.ListEventsParams{Tenant: "acme", Stream: want.ID, Limit: 10})
			if err != nil || len(evs) != 1 {
				t.Fatalf("events of %s: %d, %v", want.ID, len(evs), err)
			}
			e, w := evs[0], events[i]
			if e.Seq != w.Seq || e.Type != w.Type || !e.Time.Equal(w.Time) || string(e.Data) != string(w.Data) {
				t.Fatalf("event of %s read back as %+v, written as %+v", want.ID, e, w)
			}
		}
	}
}
