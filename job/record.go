package job

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// Record writes what a transition did to j in tx: the job's new state and the
// event of the step, in the same transaction.
func Record(tx storage.Tx, j *errand.Job, st Step, now time.Time) error {
	if st.Keep {
		return nil
	}
	if err := tx.UpdateJob(j); err != nil {
		return err
	}
	if st.Event == "" {
		noteWaiting(tx, j)
		return nil
	}
	return Append(tx, j, st.Event, st.Data, now)
}

// Append adds an event of j's stream to the log and tells the store what the job
// is now waiting for (a worker, or its run_at). Terminal events carry the whole
// job; data is used for the others.
func Append(tx storage.Tx, j *errand.Job, typ string, data any, now time.Time) error {
	var b []byte
	if j.Status.Terminal() {
		b = j.AppendJSON(nil) // a terminal event carries the job as it ended
	} else {
		var err error
		if b, err = json.Marshal(data); err != nil {
			return fmt.Errorf("encode %s event: %w", typ, err)
		}
	}
	noteWaiting(tx, j)
	return tx.InsertEvent(&errand.Event{Stream: j.Stream(), Tenant: j.Tenant, Type: typ, Time: now, Data: b, Job: j})
}

// noteWaiting tells the store that j waits for a worker (wake long polls after
// commit) or for its run_at (wake the scheduler in time).
func noteWaiting(tx storage.Tx, j *errand.Job) {
	switch j.Status {
	case errand.StatusQueued:
		tx.JobsReady(j.Operation)
	case errand.StatusScheduled:
		tx.JobsScheduled(j.RunAt)
	}
}
