package job

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/errandhq/errand"
)

var (
	t0   = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	opTx = errand.Operation{Name: "report", Retention: time.Hour}.WithDefaults()
)

// at returns a pointer to t0+d.
func at(d time.Duration) *time.Time { t := t0.Add(d); return &t }

// running is a job in its attempt-th attempt, started at t0 with a lease until t0+1m.
func running(attempt, max int) *errand.Job {
	return &errand.Job{ID: "job_1", Operation: "report", Status: errand.StatusRunning, Attempt: attempt, MaxAttempts: max,
		TimeoutSeconds: 600, StartedAt: at(0), LeaseToken: "tok", LeaseExpiresAt: at(time.Minute), Worker: "w1"}
}

func TestTransitions(t *testing.T) {
	problem := &errand.Problem{Code: "db_down"}
	tests := []struct {
		name   string
		job    *errand.Job
		apply  func(j *errand.Job) (Step, error)
		status errand.Status
		event  string // "" : written without an event
		keep   bool   // nothing to write
		err    string // the refusal's code
		check  func(t *testing.T, j *errand.Job)
	}{
		{name: "create now is queued", job: &errand.Job{RunAt: t0},
			apply: func(j *errand.Job) (Step, error) { return Create(j, t0), nil }, status: errand.StatusQueued, event: errand.EventJobCreated},
		{name: "create later is scheduled", job: &errand.Job{RunAt: t0.Add(time.Second)},
			apply: func(j *errand.Job) (Step, error) { return Create(j, t0), nil }, status: errand.StatusScheduled, event: errand.EventJobCreated},
		{name: "promote", job: &errand.Job{Status: errand.StatusScheduled},
			apply: func(j *errand.Job) (Step, error) { return Promote(j), nil }, status: errand.StatusQueued},
		{name: "start", job: &errand.Job{Status: errand.StatusQueued, TimeoutSeconds: 30, Progress: &errand.Progress{Percent: 9}},
			apply:  func(j *errand.Job) (Step, error) { return Start(j, "w1", "tok", time.Minute, t0), nil },
			status: errand.StatusRunning, event: errand.EventJobStarted, check: func(t *testing.T, j *errand.Job) {
				if j.Attempt != 1 || j.LeaseToken != "tok" || j.Worker != "w1" || j.Progress != nil {
					t.Errorf("started job = %+v", j)
				}
				if !j.LeaseExpiresAt.Equal(t0.Add(30 * time.Second)) {
					t.Errorf("lease ends %v, want the 30 s timeout", j.LeaseExpiresAt)
				}
			}},
		{name: "heartbeat extends", job: running(1, 3),
			apply:  func(j *errand.Job) (Step, error) { return Heartbeat(j, 5*time.Minute, nil, t0.Add(time.Second)), nil },
			status: errand.StatusRunning, check: func(t *testing.T, j *errand.Job) {
				if !j.LeaseExpiresAt.Equal(t0.Add(time.Second + 5*time.Minute)) {
					t.Errorf("lease ends %v", j.LeaseExpiresAt)
				}
			}},
		{name: "heartbeat never past the timeout", job: running(1, 3),
			apply:  func(j *errand.Job) (Step, error) { return Heartbeat(j, time.Hour, nil, t0.Add(time.Second)), nil },
			status: errand.StatusRunning, check: func(t *testing.T, j *errand.Job) {
				if !j.LeaseExpiresAt.Equal(t0.Add(10 * time.Minute)) {
					t.Errorf("lease ends %v, want at the timeout", j.LeaseExpiresAt)
				}
			}},
		{name: "heartbeat with progress", job: running(1, 3),
			apply: func(j *errand.Job) (Step, error) {
				return Heartbeat(j, time.Minute, &errand.Progress{Percent: 40}, t0), nil
			}, status: errand.StatusRunning, event: errand.EventJobProgress},
		{name: "succeed", job: running(1, 3),
			apply:  func(j *errand.Job) (Step, error) { return Succeed(j, opTx, json.RawMessage(`{"ok":1}`), t0), nil },
			status: errand.StatusSucceeded, event: errand.EventJobSucceeded, check: func(t *testing.T, j *errand.Job) {
				if string(j.Result) != `{"ok":1}` || j.LeaseToken != "" || !j.ExpiresAt.Equal(t0.Add(time.Hour)) {
					t.Errorf("succeeded job = %+v", j)
				}
			}},
		{name: "succeed without result", job: running(1, 3),
			apply:  func(j *errand.Job) (Step, error) { return Succeed(j, opTx, nil, t0), nil },
			status: errand.StatusSucceeded, event: errand.EventJobSucceeded, check: func(t *testing.T, j *errand.Job) {
				if string(j.Result) != "null" {
					t.Errorf("result %s, want null", j.Result)
				}
			}},
		{name: "fail with attempts left", job: running(1, 3),
			apply:  func(j *errand.Job) (Step, error) { return Fail(j, opTx, problem, true, 10*time.Second, t0), nil },
			status: errand.StatusScheduled, event: errand.EventJobRetrying, check: func(t *testing.T, j *errand.Job) {
				if !j.RunAt.Equal(t0.Add(10*time.Second)) || j.LeaseToken != "" || j.Error != problem || j.FinishedAt != nil {
					t.Errorf("retrying job = %+v", j)
				}
			}},
		{name: "fail retried at once is queued", job: running(1, 3),
			apply:  func(j *errand.Job) (Step, error) { return Fail(j, opTx, problem, true, 0, t0), nil },
			status: errand.StatusQueued, event: errand.EventJobRetrying},
		{name: "fail the last attempt", job: running(3, 3),
			apply:  func(j *errand.Job) (Step, error) { return Fail(j, opTx, problem, true, time.Second, t0), nil },
			status: errand.StatusFailed, event: errand.EventJobFailed},
		{name: "fail without retry", job: running(1, 3),
			apply:  func(j *errand.Job) (Step, error) { return Fail(j, opTx, problem, false, time.Second, t0), nil },
			status: errand.StatusFailed, event: errand.EventJobFailed},
		{name: "fail after a cancel request", job: func() *errand.Job { j := running(1, 3); j.CancelRequested = true; return j }(),
			apply:  func(j *errand.Job) (Step, error) { return Fail(j, opTx, problem, true, time.Second, t0), nil },
			status: errand.StatusCanceled, event: errand.EventJobCanceled},
		{name: "lease expired", job: running(1, 3),
			apply:  func(j *errand.Job) (Step, error) { return Expire(j, opTx, time.Second, t0.Add(2*time.Minute)), nil },
			status: errand.StatusScheduled, event: errand.EventJobRetrying, check: func(t *testing.T, j *errand.Job) {
				if j.Error.Code != errand.ECODELEASEEXPIRED {
					t.Errorf("error %+v, want lease_expired", j.Error)
				}
			}},
		{name: "timed out", job: running(1, 3),
			apply:  func(j *errand.Job) (Step, error) { return Expire(j, opTx, time.Second, t0.Add(10*time.Minute)), nil },
			status: errand.StatusScheduled, event: errand.EventJobRetrying, check: func(t *testing.T, j *errand.Job) {
				if j.Error.Code != errand.ECODETIMEOUT {
					t.Errorf("error %+v, want timeout", j.Error)
				}
			}},
		{name: "release", job: running(2, 3),
			apply:  func(j *errand.Job) (Step, error) { return Release(j, opTx, t0), nil },
			status: errand.StatusQueued, event: errand.EventJobRetrying, check: func(t *testing.T, j *errand.Job) {
				if j.Attempt != 1 || j.StartedAt != nil || j.Worker != "" {
					t.Errorf("released job = %+v", j)
				}
			}},
		{name: "release after a cancel request", job: func() *errand.Job { j := running(1, 3); j.CancelRequested = true; return j }(),
			apply:  func(j *errand.Job) (Step, error) { return Release(j, opTx, t0), nil },
			status: errand.StatusCanceled, event: errand.EventJobCanceled},
		{name: "cancel queued", job: &errand.Job{Status: errand.StatusQueued},
			apply:  func(j *errand.Job) (Step, error) { return Cancel(j, opTx, t0) },
			status: errand.StatusCanceled, event: errand.EventJobCanceled},
		{name: "cancel scheduled", job: &errand.Job{Status: errand.StatusScheduled},
			apply:  func(j *errand.Job) (Step, error) { return Cancel(j, opTx, t0) },
			status: errand.StatusCanceled, event: errand.EventJobCanceled},
		{name: "cancel running asks it to stop", job: running(1, 3),
			apply:  func(j *errand.Job) (Step, error) { return Cancel(j, opTx, t0) },
			status: errand.StatusRunning, check: func(t *testing.T, j *errand.Job) {
				if !j.CancelRequested {
					t.Errorf("cancel_requested not set")
				}
			}},
		{name: "cancel running twice", job: func() *errand.Job { j := running(1, 3); j.CancelRequested = true; return j }(),
			apply: func(j *errand.Job) (Step, error) { return Cancel(j, opTx, t0) }, status: errand.StatusRunning, keep: true},
		{name: "cancel canceled", job: &errand.Job{Status: errand.StatusCanceled},
			apply: func(j *errand.Job) (Step, error) { return Cancel(j, opTx, t0) }, status: errand.StatusCanceled, keep: true},
		{name: "cancel succeeded", job: &errand.Job{Status: errand.StatusSucceeded},
			apply: func(j *errand.Job) (Step, error) { return Cancel(j, opTx, t0) }, status: errand.StatusSucceeded, err: errand.ECONFLICT},
		{name: "retry failed", job: &errand.Job{Status: errand.StatusFailed, Attempt: 3, MaxAttempts: 3, Error: problem, FinishedAt: at(0)},
			apply:  func(j *errand.Job) (Step, error) { return Retry(j, t0) },
			status: errand.StatusQueued, event: errand.EventJobRetrying, check: func(t *testing.T, j *errand.Job) {
				if j.MaxAttempts != 4 || j.Error != nil || j.FinishedAt != nil {
					t.Errorf("retried job = %+v", j)
				}
			}},
		{name: "retry canceled", job: &errand.Job{Status: errand.StatusCanceled, CancelRequested: true, MaxAttempts: 3},
			apply: func(j *errand.Job) (Step, error) { return Retry(j, t0) }, status: errand.StatusQueued, event: errand.EventJobRetrying},
		{name: "retry queued", job: &errand.Job{Status: errand.StatusQueued},
			apply: func(j *errand.Job) (Step, error) { return Retry(j, t0) }, status: errand.StatusQueued, err: errand.ECONFLICT},
		{name: "retry running", job: running(1, 3),
			apply: func(j *errand.Job) (Step, error) { return Retry(j, t0) }, status: errand.StatusRunning, err: errand.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := tt.apply(tt.job)
			if got := errand.ErrorCode(err); err != nil || tt.err != "" {
				if got != tt.err {
					t.Fatalf("error %v, want code %q", err, tt.err)
				}
			}
			if tt.job.Status != tt.status || st.Event != tt.event || st.Keep != tt.keep {
				t.Fatalf("status %s, event %q, keep %v; want %s, %q, %v", tt.job.Status, st.Event, st.Keep, tt.status, tt.event, tt.keep)
			}
			if tt.job.Status.Terminal() && tt.err == "" && !tt.keep && (tt.job.FinishedAt == nil || tt.job.ExpiresAt == nil || tt.job.LeaseToken != "") {
				t.Errorf("a finished job keeps its lease or has no finish and expiry times: %+v", tt.job)
			}
			if tt.check != nil {
				tt.check(t, tt.job)
			}
		})
	}
}
