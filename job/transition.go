package job

import (
	"encoding/json"
	"math/rand/v2"
	"time"

	"github.com/errandhq/errand"
)

// The job state machine, written once. Each transition takes a job (and the
// time), changes it to its next state and returns the Step to record: the
// event that tells of the change, if any. Transitions touch no store; the
// services load a job in a transaction, call one, and Record what it returns
// (see record.go), so a state change and its event always commit together.
//
//	scheduled ──(run_at comes: Promote)──▶ queued ──(Start)──▶ running
//	running ──(Succeed)──▶ succeeded
//	running ──(Fail, Expire: attempts left)──▶ scheduled/queued (job.retrying)
//	running ──(Fail, Expire: none left, or no retry)──▶ failed
//	running ──(Release)──▶ queued (attempt not counted)
//	queued/scheduled ──(Cancel)──▶ canceled; running ──(Cancel)──▶ cancel_requested,
//	  then canceled when its attempt ends (Fail, Expire or Release)
//	failed/canceled ──(Retry)──▶ queued (job.retrying, a new attempt)

// Step is what a transition did: the event to append, or none.
type Step struct {
	// Event is the type of the event that tells of the change; "" when the
	// change has none (the job is only written).
	Event string
	// Data is the event's data (terminal events carry the job instead).
	Data any
	// Keep is set when nothing changed: there is nothing to write.
	Keep bool
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

// startedData is the data of a job.started event.
type startedData struct {
	Attempt int    `json:"attempt"`
	Worker  string `json:"worker,omitempty"`
}

// Create makes a new job wait for its run_at: queued when it has come, else
// scheduled. The job is inserted, not updated.
func Create(j *errand.Job, now time.Time) Step {
	j.Status = errand.StatusQueued
	if j.RunAt.After(now) {
		j.Status = errand.StatusScheduled
	}
	return Step{Event: errand.EventJobCreated, Data: createdData{j.Operation, j.Status, j.RunAt}}
}

// Promote queues a scheduled job whose run_at has come.
func Promote(j *errand.Job) Step {
	j.Status = errand.StatusQueued
	return Step{}
}

// Start gives a queued job to a worker: a new attempt, held with token until
// now+lease (never past the attempt's timeout).
func Start(j *errand.Job, worker, token string, lease time.Duration, now time.Time) Step {
	j.Status = errand.StatusRunning
	j.Attempt++
	j.StartedAt = &now
	j.Worker = worker
	j.Progress = nil
	j.LeaseToken = token
	exp := LeaseEnd(j, now, lease)
	j.LeaseExpiresAt = &exp
	return Step{Event: errand.EventJobStarted, Data: startedData{j.Attempt, worker}}
}

// LeaseEnd is when a lease taken or extended at now ends: after d, but never
// past the attempt's timeout.
func LeaseEnd(j *errand.Job, now time.Time, d time.Duration) time.Time {
	end := now.Add(d)
	if deadline := j.StartedAt.Add(time.Duration(j.TimeoutSeconds) * time.Second); deadline.Before(end) {
		return deadline
	}
	return end
}

// Heartbeat extends a running job's lease to now+lease (never past its
// timeout) and, when p is set, records its progress (a job.progress event).
func Heartbeat(j *errand.Job, lease time.Duration, p *errand.Progress, now time.Time) Step {
	exp := LeaseEnd(j, now, lease)
	j.LeaseExpiresAt = &exp
	if p == nil {
		return Step{}
	}
	j.Progress = p
	return Step{Event: errand.EventJobProgress, Data: p}
}

// Succeed ends a running job with its result.
func Succeed(j *errand.Job, op errand.Operation, result json.RawMessage, now time.Time) Step {
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	j.Result, j.Error = result, nil
	finish(j, errand.StatusSucceeded, now, op.Retention)
	return Step{Event: errand.EventJobSucceeded}
}

// Fail ends a running job's attempt with p: canceled when a cancel was asked
// for; failed when retry is false or no attempt is left; else it runs again
// after delay (job.retrying).
func Fail(j *errand.Job, op errand.Operation, p *errand.Problem, retry bool, delay time.Duration, now time.Time) Step {
	j.Error = p
	switch {
	case j.CancelRequested:
		finish(j, errand.StatusCanceled, now, op.Retention)
		return Step{Event: errand.EventJobCanceled}
	case !retry || j.Attempt >= j.MaxAttempts:
		finish(j, errand.StatusFailed, now, op.Retention)
		return Step{Event: errand.EventJobFailed}
	}
	requeue(j, now.Add(delay), now)
	return Step{Event: errand.EventJobRetrying, Data: RetryingData{Attempt: j.Attempt, RunAt: j.RunAt, Error: p, Reason: p.Code}}
}

// Expire ends a running job's attempt whose lease ran out (or whose timeout
// passed), as a failure worth retrying after delay.
func Expire(j *errand.Job, op errand.Operation, delay time.Duration, now time.Time) Step {
	p := &errand.Problem{Code: errand.ECODELEASEEXPIRED, Title: "The worker's lease expired",
		Detail: "no heartbeat or completion arrived before the lease ended (worker " + or(j.Worker, "unnamed") + ")"}
	if timeout := time.Duration(j.TimeoutSeconds) * time.Second; !now.Before(j.StartedAt.Add(timeout)) {
		p = &errand.Problem{Code: errand.ECODETIMEOUT, Title: "The attempt timed out",
			Detail: "the attempt ran longer than its timeout of " + timeout.String()}
	}
	return Fail(j, op, p, true, delay, now)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Release gives a running job back without counting the attempt (its worker
// stops): queued again at once, or canceled when a cancel was asked for.
func Release(j *errand.Job, op errand.Operation, now time.Time) Step {
	if j.CancelRequested {
		finish(j, errand.StatusCanceled, now, op.Retention)
		return Step{Event: errand.EventJobCanceled}
	}
	j.Attempt--
	j.StartedAt, j.Worker = nil, ""
	requeue(j, now, now)
	return Step{Event: errand.EventJobRetrying, Data: RetryingData{Attempt: j.Attempt, RunAt: j.RunAt, Reason: "released"}}
}

// Cancel cancels a job that has not started; a running job is asked to stop
// (cancel_requested), which its worker learns on its next heartbeat. A
// finished job other than a canceled one cannot be canceled.
func Cancel(j *errand.Job, op errand.Operation, now time.Time) (Step, error) {
	switch j.Status {
	case errand.StatusQueued, errand.StatusScheduled:
		finish(j, errand.StatusCanceled, now, op.Retention)
		return Step{Event: errand.EventJobCanceled}, nil
	case errand.StatusRunning:
		if j.CancelRequested {
			return Step{Keep: true}, nil
		}
		j.CancelRequested = true
		return Step{}, nil
	case errand.StatusCanceled:
		return Step{Keep: true}, nil
	}
	return Step{}, errand.Errorf(errand.ECONFLICT, "job %s already %s", j.ID, j.Status)
}

// Retry runs a failed or canceled job again, as a new attempt (one more is
// allowed when it had used them all).
func Retry(j *errand.Job, now time.Time) (Step, error) {
	if j.Status != errand.StatusFailed && j.Status != errand.StatusCanceled {
		return Step{}, errand.Errorf(errand.ECONFLICT, "only failed or canceled jobs can be retried; job %s is %s", j.ID, j.Status)
	}
	requeue(j, now, now)
	j.Error, j.CancelRequested = nil, false
	if j.Attempt >= j.MaxAttempts {
		j.MaxAttempts = j.Attempt + 1
	}
	return Step{Event: errand.EventJobRetrying, Data: RetryingData{Attempt: j.Attempt, RunAt: j.RunAt, Reason: "manual"}}, nil
}

// finish moves j to a terminal status, kept for retention from now.
func finish(j *errand.Job, status errand.Status, now time.Time, retention time.Duration) {
	j.Status = status
	j.FinishedAt = &now
	j.LeaseToken, j.LeaseExpiresAt = "", nil
	exp := now.Add(retention)
	j.ExpiresAt = &exp
}

// requeue makes a job wait to run again at runAt.
func requeue(j *errand.Job, runAt, now time.Time) {
	j.RunAt = runAt
	j.Status = errand.StatusQueued
	if runAt.After(now) {
		j.Status = errand.StatusScheduled
	}
	j.LeaseToken, j.LeaseExpiresAt = "", nil
	j.FinishedAt, j.ExpiresAt = nil, nil
}

// Backoff is how long to wait before attempt+1 after attempt failed: exponential
// from the policy's Initial, capped at its Max, with "equal jitter" (a random
// point in the upper half) so that jobs failing together do not retry together.
func Backoff(p errand.RetryPolicy, attempt int) time.Duration {
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(half+1)
}
