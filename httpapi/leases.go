package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/queue"
)

// leaseList is the answer to a lease request: the leases, and when the
// request carried completions, what became of each (brief: job id and
// status, or the problem).
type leaseList struct {
	Leases    []errand.Lease `json:"leases"`
	Completed []batchResult  `json:"completed,omitempty"`
}

func (l leaseList) AppendJSON(b []byte) []byte { return l.appendParts(b, nil) }

func (l leaseList) appendParts(b []byte, flush func([]byte) []byte) []byte {
	b = appendItems(append(b, '{'), flush, "leases", l.Leases, func(b []byte, l *errand.Lease) []byte { return l.AppendJSON(b) })
	if l.Completed != nil {
		b = appendItems(append(b, ','), flush, "completed", l.Completed, appendBatchResult)
	}
	return append(b, '}')
}

func handleLease(acc *access, q *queue.Queue) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		lp, err := decode[queue.LeaseParams](r, false)
		if err != nil {
			return err
		}
		outcomes, leases, err := leasing(r, q).CompleteAndLease(r.Context(), lp)
		if err != nil {
			return err
		}
		if leases == nil {
			leases = []errand.Lease{}
		}
		var done []batchResult
		if len(lp.Completions) > 0 {
			done = batchAnswer(acc, r, lp.Completions, outcomes, true)
		}
		encode(w, http.StatusOK, leaseList{Leases: leases, Completed: done})
		return nil
	})
}

func handleHeartbeat(acc *access, q *queue.Queue) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		hp, err := decode[queue.HeartbeatParams](r, true)
		if err != nil {
			return err
		}
		res, err := leasing(r, q).Heartbeat(r.Context(), r.PathValue("lease_id"), hp)
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, res)
		return nil
	})
}

// completeRequest is the body of a completion.
type completeRequest struct {
	Result json.RawMessage `json:"result"`
}

func handleComplete(acc *access, q *queue.Queue) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		cr, err := decode[completeRequest](r, true)
		if err != nil {
			return err
		}
		j, err := leasing(r, q).Complete(r.Context(), r.PathValue("lease_id"), cr.Result)
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, j)
		return nil
	})
}

// batchRequest is the body of POST /v1/leases/complete.
type batchRequest struct {
	Completions []queue.Completion `json:"completions"`
	// Brief answers each completion with its job's id and status instead of
	// the whole job (a worker completing 1,000 jobs seldom wants them back).
	Brief bool `json:"brief"`
}

// batchResult is one entry of the answer: the job (or, brief, its id and
// status), or the problem.
type batchResult struct {
	LeaseID string          `json:"lease_id"`
	Job     *errand.Job     `json:"job,omitempty"`
	JobID   string          `json:"job_id,omitempty"`
	Status  errand.Status   `json:"status,omitempty"`
	Error   *errand.Problem `json:"error,omitempty"`
}

// batchResults is the answer to a batch completion.
type batchResults []batchResult

func (rs batchResults) AppendJSON(b []byte) []byte { return rs.appendParts(b, nil) }

func (rs batchResults) appendParts(b []byte, flush func([]byte) []byte) []byte {
	b = appendItems(append(b, '{'), flush, "results", rs, appendBatchResult)
	return append(b, '}')
}

func appendBatchResult(b []byte, r *batchResult) []byte {
	b = append(b, `{"lease_id":`...)
	b = appendPlain(b, r.LeaseID)
	if r.JobID != "" {
		b = append(b, `,"job_id":`...)
		b = appendPlain(b, r.JobID)
		b = append(b, `,"status":`...)
		b = appendPlain(b, r.Status)
	}
	return appendOutcome(b, true, r.Job, r.Error)
}

// appendOutcome ends an entry of a batch answer with its job or its problem
// (after a comma when more precedes them in the entry).
func appendOutcome(b []byte, more bool, j *errand.Job, p *errand.Problem) []byte {
	if more && (j != nil || p != nil) {
		b = append(b, ',')
	}
	switch {
	case j != nil:
		b = append(b, `"job":`...)
		b = j.AppendJSON(b)
	case p != nil:
		b = append(b, `"error":`...)
		b = appendPlain(b, p)
	}
	return append(b, '}')
}

func handleCompleteBatch(acc *access, q *queue.Queue) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		br, err := decode[batchRequest](r, false)
		if err != nil {
			return err
		}
		outcomes, err := leasing(r, q).CompleteBatch(r.Context(), br.Completions)
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, batchResults(batchAnswer(acc, r, br.Completions, outcomes, br.Brief)))
		return nil
	})
}

// batchAnswer is each completion's entry of an answer: its job (or, brief,
// the job's id and status), or its problem, recorded when it is a denial.
func batchAnswer(acc *access, r *http.Request, cs []queue.Completion, outcomes []queue.Outcome, brief bool) []batchResult {
	res := make([]batchResult, len(outcomes))
	for i, o := range outcomes {
		res[i] = batchResult{LeaseID: cs[i].LeaseID}
		switch {
		case o.Err != nil:
			res[i].Error = Problem(o.Err)
			acc.recordDenial(r, o.Err, res[i].Error.Status) // another tenant's lease, say
		case brief:
			res[i].JobID, res[i].Status = o.Job.ID, o.Job.Status
		default:
			res[i].Job = o.Job
		}
	}
	return res
}

func handleFail(acc *access, q *queue.Queue) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		fp, err := decode[queue.FailParams](r, true)
		if err != nil {
			return err
		}
		j, err := leasing(r, q).Fail(r.Context(), r.PathValue("lease_id"), fp)
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, j)
		return nil
	})
}

func handleRelease(acc *access, q *queue.Queue) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		j, err := leasing(r, q).Release(r.Context(), r.PathValue("lease_id"))
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, j)
		return nil
	})
}

// leasing is the queue as r's principal may use it: its own tenant's jobs of
// the operations it may lease, every tenant's of those it may lease with an
// operator-level workers:lease:…@*. A lease of any other job is not held.
func leasing(r *http.Request, q *queue.Queue) *queue.Queue {
	return q.For(queue.ScopeOf(principal(r)))
}

// worker lets only principals that may lease some operation act on leases.
// The lease id (with its 128-bit token) is what names the job.
func worker(acc *access, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := principal(r); !p.CanAny(errand.PermWorkersLease) {
			acc.fail(w, r, errand.Deny(errand.PermWorkersLease, errand.RedactLeases(r.URL.Path)))
			return
		}
		next.ServeHTTP(w, r)
	})
}
