package job

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// Record writes j's new state and appends the event that tells of it, in tx:
// a state change and its event always commit together. Terminal events carry the
// whole job; data is used for the others.
func Record(ctx context.Context, tx storage.Tx, j *errand.Job, typ string, data any, now time.Time) error {
	if err := tx.UpdateJob(ctx, j); err != nil {
		return err
	}
	return Append(ctx, tx, j, typ, data, now)
}

// Append adds an event of j's stream to the log and tells the store what the job
// is now waiting for (a worker, or its run_at).
func Append(ctx context.Context, tx storage.Tx, j *errand.Job, typ string, data any, now time.Time) error {
	var b []byte
	if j.Status.Terminal() {
		b = j.AppendJSON(nil) // a terminal event carries the job as it ended
	} else {
		var err error
		if b, err = json.Marshal(data); err != nil {
			return fmt.Errorf("encode %s event: %w", typ, err)
		}
	}
	switch j.Status {
	case errand.StatusQueued:
		tx.JobsReady(j.Operation)
	case errand.StatusScheduled:
		tx.JobsScheduled(j.RunAt)
	}
	return tx.InsertEvent(ctx, &errand.Event{Stream: j.Stream(), Tenant: j.Tenant, Type: typ, Time: now, Data: b, Job: j})
}

// Finish moves j to a terminal status (not written yet: pass it to Record).
func Finish(j *errand.Job, status errand.Status, now time.Time, retention time.Duration) {
	j.Status = status
	j.FinishedAt = &now
	j.LeaseToken, j.LeaseExpiresAt = "", nil
	exp := now.Add(retention)
	j.ExpiresAt = &exp
}

// Requeue makes a finished or failed job wait to run again at runAt.
func Requeue(j *errand.Job, runAt, now time.Time) {
	j.RunAt = runAt
	j.Status = errand.StatusQueued
	if runAt.After(now) {
		j.Status = errand.StatusScheduled
	}
	j.LeaseToken, j.LeaseExpiresAt = "", nil
	j.FinishedAt, j.ExpiresAt = nil, nil
}

// createdData is the data of a job.created event.
type createdData struct {
	Operation string        `json:"operation"`
	Status    errand.Status `json:"status"`
	RunAt     time.Time     `json:"run_at"`
}

// RetryingData is the data of a job.retrying event.
type RetryingData struct {
	Attempt int             `json:"attempt"`
	RunAt   time.Time       `json:"run_at"`
	Error   *errand.Problem `json:"error,omitempty"`
	Reason  string          `json:"reason"`
}
