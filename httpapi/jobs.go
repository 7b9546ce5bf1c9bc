package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/jsonguard"
	"github.com/errandhq/errand/storage"
)

// submitRequest is the body of POST /v1/jobs.
type submitRequest struct {
	Operation      string            `json:"operation"`
	Input          json.RawMessage   `json:"input"`
	CallbackURL    string            `json:"callback_url"`
	RunAt          *string           `json:"run_at"`
	DelaySeconds   *int              `json:"delay_seconds"`
	Priority       *int              `json:"priority"`
	MaxAttempts    *int              `json:"max_attempts"`
	TimeoutSeconds *int              `json:"timeout_seconds"`
	Metadata       map[string]string `json:"metadata" nul:"allow"` // stored as a JSON document, not text
}

func (s *submitRequest) params(r *http.Request) (job.SubmitParams, error) {
	sp := job.SubmitParams{Operation: s.Operation, Input: s.Input, Delay: s.DelaySeconds, Priority: s.Priority,
		Attempts: s.MaxAttempts, Timeout: s.TimeoutSeconds, Metadata: s.Metadata, Callback: s.CallbackURL,
		IdempotencyKey: r.Header.Get("Idempotency-Key"), Header: r.Header.Get}
	if s.Operation == "" {
		return sp, &errand.Error{Code: errand.EVALIDATION, Message: "the request has invalid fields",
			Fields: []errand.FieldError{{Pointer: "/operation", Message: "required"}}}
	}
	if s.RunAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *s.RunAt)
		if err != nil {
			return sp, &errand.Error{Code: errand.EVALIDATION, Message: "the request has invalid fields",
				Fields: []errand.FieldError{{Pointer: "/run_at", Message: "must be an RFC 3339 time like 2026-12-01T00:00:00Z"}}}
		}
		sp.RunAt = &t
	}
	if bytes.Equal(bytes.TrimSpace(sp.Input), []byte("null")) {
		sp.Input = nil
	}
	return sp, nil
}

func handleSubmit(acc *access, jobs *job.Service, c *Config) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[submitRequest](r, false)
		if err != nil {
			return err
		}
		sp, err := req.params(r)
		if err != nil {
			return err
		}
		return submit(w, r, jobs, c, sp)
	})
}

// handleRouteSubmit serves an operation mounted at its own path: the body is the input.
func handleRouteSubmit(acc *access, jobs *job.Service, c *Config, operation string) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		body, err := readBody(r)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := jsonguard.Check(body, nil); err != nil {
				return err
			}
		}
		return submit(w, r, jobs, c, job.SubmitParams{Operation: operation, Input: bytes.TrimSpace(body),
			IdempotencyKey: r.Header.Get("Idempotency-Key"), Header: r.Header.Get})
	})
}

// submit creates the job and answers 202, or 200 with the finished job when the
// client (or the operation's default) waits and the job finishes in time. A
// duplicate of a unique job answers that job, 200 with Errand-Duplicate-Of.
func submit(w http.ResponseWriter, r *http.Request, jobs *job.Service, c *Config, sp job.SubmitParams) error {
	p := principal(r)
	sub, err := jobs.SubmitJob(r.Context(), p, sp)
	if err != nil {
		return err
	}
	j, pending := sub.Job, http.StatusAccepted
	setRateFields(w.Header(), r.Context())
	switch sub.Outcome {
	case job.Replayed:
		w.Header().Set("Idempotent-Replayed", "true")
	case job.Duplicate:
		w.Header().Set("Errand-Duplicate-Of", j.ID)
		pending = http.StatusOK
	}
	op, _ := jobs.Operation(j.Operation)
	pref := parsePrefer(r.Header)
	wait := pref.waitFor(op.Wait, c.MaxWait)
	if wait > 0 && !j.Status.Terminal() {
		if j, err = jobs.Wait(r.Context(), p, j.ID, wait); err != nil {
			return err
		}
	}
	w.Header().Set("Location", j.Path())
	switch {
	case pref.async:
		w.Header().Set("Preference-Applied", "respond-async")
	case j.Status.Terminal() && pref.wait >= 0:
		w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	}
	writeJob(w, j, pending)
	return nil
}

// writeJob answers with the job: 200 when finished, else the given status with a
// Retry-After hint.
func writeJob(w http.ResponseWriter, j *errand.Job, pending int) {
	if j.Status.Terminal() {
		encode(w, http.StatusOK, j)
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter(j)))
	encode(w, pending, j)
}

// retryAfter suggests when to poll again, in seconds: when a scheduled job is due,
// else one second.
func retryAfter(j *errand.Job) int {
	if j.Status == errand.StatusScheduled {
		if d := time.Until(j.RunAt); d > time.Second {
			return int(math.Ceil(min(d, time.Hour).Seconds()))
		}
	}
	return 1
}

func handleGetJob(acc *access, jobs *job.Service, c *Config) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		p := principal(r)
		pref := parsePrefer(r.Header)
		var j *errand.Job
		var err error
		if wait := min(max(pref.wait, 0), c.MaxWait); wait > 0 {
			j, err = jobs.Wait(r.Context(), p, r.PathValue("id"), wait)
		} else {
			j, err = jobs.Get(r.Context(), p, r.PathValue("id"))
		}
		if err != nil {
			return err
		}
		if err := jobs.Place(r.Context(), j); err != nil {
			return err
		}
		writeJob(w, j, http.StatusOK)
		return nil
	})
}

// jobList is a page of jobs.
type jobList struct {
	Jobs       []*errand.Job `json:"jobs"`
	NextCursor *string       `json:"next_cursor"`
}

func (l jobList) AppendJSON(b []byte) []byte { return l.appendParts(b, nil) }

func (l jobList) appendParts(b []byte, flush func([]byte) []byte) []byte {
	b = appendItems(append(b, '{'), flush, "jobs", l.Jobs, func(b []byte, j **errand.Job) []byte { return (*j).AppendJSON(b) })
	b = append(b, `,"next_cursor":`...)
	if l.NextCursor == nil {
		b = append(b, "null"...)
	} else {
		b = appendPlain(b, *l.NextCursor)
	}
	return append(b, '}')
}

func handleListJobs(acc *access, jobs *job.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		lp := job.ListParams{Operation: q.Get("operation"), Status: errand.Status(q.Get("status")), Cursor: q.Get("cursor")}
		var err error
		if lp.Limit, err = intParam(q.Get("limit")); err != nil {
			return err
		}
		list, next, err := jobs.List(r.Context(), principal(r), lp)
		if err != nil {
			return err
		}
		out := jobList{Jobs: list}
		if out.Jobs == nil {
			out.Jobs = []*errand.Job{}
		}
		if next != "" {
			out.NextCursor = &next
		}
		encode(w, http.StatusOK, out)
		return nil
	})
}

func intParam(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errand.Errorf(errand.EINVALID, "limit %q is not a whole number", s)
	}
	return n, nil
}

func handleCancelJob(acc *access, jobs *job.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		j, err := jobs.Cancel(r.Context(), principal(r), r.PathValue("id"))
		if err != nil {
			return err
		}
		acc.recordAct(r, errand.PermJobsCancel, j.ID, "operation="+j.Operation)
		encode(w, http.StatusOK, j)
		return nil
	})
}

func handleRetryJob(acc *access, jobs *job.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		j, err := jobs.Retry(r.Context(), principal(r), r.PathValue("id"))
		if err != nil {
			return err
		}
		acc.recordAct(r, errand.PermJobsRetry, j.ID, "operation="+j.Operation)
		w.Header().Set("Location", j.Path())
		encode(w, http.StatusAccepted, j)
		return nil
	})
}

func handleDeleteJob(acc *access, jobs *job.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := jobs.Delete(r.Context(), principal(r), r.PathValue("id")); err != nil {
			return err
		}
		acc.recordAct(r, errand.PermJobsDelete, r.PathValue("id"), "")
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// eventList is a page of a stream's events.
type eventList struct {
	Events     []*errand.Event `json:"events"`
	NextCursor *string         `json:"next_cursor"`
}

func handleJobEvents(acc *access, jobs *job.Service, store storage.Reader, hub *event.Hub, streams context.Context, c *Config) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		p, id := principal(r), r.PathValue("id")
		after, err := resumeCursor(r)
		var j *errand.Job
		if err == nil {
			j, err = jobs.Get(r.Context(), p, id)
		}
		if err != nil {
			return err
		}
		if wantsSSE(r) {
			if j.Status.Terminal() {
				rest, err := jobs.Events(r.Context(), p, id, errand.FormatCursor(after), 1)
				if err != nil {
					return err
				}
				if len(rest) == 0 {
					w.WriteHeader(http.StatusNoContent) // finished and fully seen: EventSource stops reconnecting
					return nil
				}
			}
			f := c.follow(store, hub, p.Tenant, id, after)
			f.Until = terminal
			serveSSE(w, r, acc, f, streams)
			return nil
		}
		limit, err := pageLimit(r)
		if err != nil {
			return err
		}
		events, err := jobs.Events(r.Context(), p, id, errand.FormatCursor(after), limit)
		if err != nil {
			return err
		}
		writeEvents(w, events, limit, jobs.PageBytes())
		return nil
	})
}

// batchSubmit is the body of POST /v1/job-batches: jobs as POST /v1/jobs takes
// them, each with its own idempotency key if any.
type batchSubmit struct {
	Jobs []struct {
		submitRequest
		IdempotencyKey string `json:"idempotency_key"`
	} `json:"jobs"`
}

// submitted is one entry of the answer: the job, or the problem.
type submitted struct {
	Job   *errand.Job     `json:"job,omitempty"`
	Error *errand.Problem `json:"error,omitempty"`
}

// submittedList is the answer to a batch submit.
type submittedList []submitted

func (l submittedList) AppendJSON(b []byte) []byte {
	return appendList(b, "jobs", l, func(b []byte, s *submitted) []byte {
		return appendOutcome(append(b, '{'), false, s.Job, s.Error)
	})
}

// handleSubmitBatch stores many jobs with one commit; each is accepted or
// refused on its own (202 when at least one was accepted, else 422).
func handleSubmitBatch(acc *access, jobs *job.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[batchSubmit](r, false)
		if err != nil {
			return err
		}
		if len(req.Jobs) == 0 || len(req.Jobs) > job.MaxBatch {
			return errand.Errorf(errand.EINVALID, "a batch holds 1 to %d jobs", job.MaxBatch)
		}
		res := make([]submitted, len(req.Jobs))
		var sps []job.SubmitParams
		var at []int // where each of sps answers in res
		for i, item := range req.Jobs {
			sp, err := item.params(r)
			if err != nil {
				res[i].Error = Problem(err)
				continue
			}
			sp.IdempotencyKey = item.IdempotencyKey
			sps, at = append(sps, sp), append(at, i)
		}
		accepted := 0
		if len(sps) > 0 {
			out, errs, err := jobs.SubmitMany(r.Context(), principal(r), sps)
			if err != nil {
				return err
			}
			for k, i := range at {
				if errs[k] != nil {
					res[i].Error = Problem(errs[k])
					acc.recordDenial(r, errs[k], res[i].Error.Status)
					continue
				}
				res[i].Job = out[k]
				accepted++
			}
		}
		status := http.StatusAccepted
		if accepted == 0 {
			status = http.StatusUnprocessableEntity
		}
		setRateFields(w.Header(), r.Context())
		encode(w, status, submittedList(res))
		return nil
	})
}
