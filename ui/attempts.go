package ui

import (
	"encoding/json"
	"time"

	"github.com/errandhq/errand"
)

// attempt is one run of a job, as its events tell it.
type attempt struct {
	N       int
	Worker  string
	Started time.Time
	Ended   time.Time // zero while it runs
	Outcome string    // retrying, succeeded, failed, canceled, or "" while it runs
	Error   string
}

// attemptsOf reads a job's attempts from its events, oldest first: each
// job.started opens one, the next job.retrying or terminal event ends it.
func attemptsOf(events []*errand.Event) []attempt {
	var out []attempt
	end := func(e *errand.Event, outcome string, p *errand.Problem) {
		if n := len(out); n > 0 && out[n-1].Outcome == "" {
			out[n-1].Ended, out[n-1].Outcome = e.Time, outcome
			if p != nil {
				out[n-1].Error = p.Code + ": " + p.Detail
			}
		}
	}
	for _, e := range events {
		var d struct {
			Attempt int             `json:"attempt"`
			Worker  string          `json:"worker"`
			Reason  string          `json:"reason"`
			Error   *errand.Problem `json:"error"`
		}
		_ = json.Unmarshal(e.Data, &d)
		switch e.Type {
		case errand.EventJobStarted:
			out = append(out, attempt{N: d.Attempt, Worker: d.Worker, Started: e.Time})
		case errand.EventJobRetrying:
			outcome := "retrying"
			if d.Reason != "" {
				outcome += " (" + d.Reason + ")"
			}
			end(e, outcome, d.Error)
		case errand.EventJobSucceeded:
			end(e, "succeeded", nil)
		case errand.EventJobFailed:
			end(e, "failed", d.Error)
		case errand.EventJobCanceled:
			end(e, "canceled", nil)
		}
	}
	return out
}
