package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/errandhq/errand"
)

// resultConfig declares an operation whose results must match a schema.
const resultConfig = `
listen: "127.0.0.1:0"
operations:
  render:
    result_schema:
      type: object
      required: [url]
      additionalProperties: false
      properties:
        url: { type: string, pattern: "^/" }
    retry: { max_attempts: 2, initial: 50ms, max: 100ms }
`

// TestE2EResultSchema: a worker's result that does not match the operation's
// result_schema is never a job's result. The completion is answered 422
// result_invalid (pointing into the result) and the attempt fails like any
// failed attempt: retried after the backoff while attempts are left
// (job.retrying, reason result_invalid), then failed with that error.
func TestE2EResultSchema(t *testing.T) {
	t.Parallel()
	s := startServer(t, resultConfig)
	j := submit(t, s, "render", map[string]string{"period": "monthly"})

	lease := leaseNext(t, s, "render")
	status, _, b := s.do("POST", "/v1/leases/"+lease+"/complete", `{"result":{"url":"https://elsewhere/x.pdf"}}`)
	var p errand.Problem
	mustJSON(t, b, &p)
	if status != 422 || p.Code != errand.ERESULTINVALID || len(p.Errors) != 1 || p.Errors[0].Pointer != "/url" {
		t.Fatalf("completing with a result the schema refuses = %d %s, want 422 result_invalid at /url", status, b)
	}
	got := getJob(t, s, j.ID)
	if got.Status.Terminal() || got.Status == errand.StatusRunning || string(got.Result) != "null" ||
		got.Error == nil || got.Error.Code != errand.ERESULTINVALID {
		t.Fatalf("after a refused result the job is %s, result %s, error %+v; want it waiting to retry, no result, error result_invalid",
			got.Status, got.Result, got.Error)
	}
	if status, _, b := s.do("POST", "/v1/leases/"+lease+"/complete", `{"result":{"url":"/ok"}}`); status != 409 {
		t.Fatalf("the refused attempt's lease completed again = %d %s, want 409: the attempt is over", status, b)
	}

	// The last attempt, refused in a batch: the job fails with the error.
	lease = leaseNext(t, s, "render")
	status, _, b = s.do("POST", "/v1/leases/complete", fmt.Sprintf(`{"completions":[{"lease_id":%q,"result":[1,2]}]}`, lease))
	if status != 200 || !strings.Contains(string(b), `"code":"result_invalid"`) {
		t.Fatalf("a batch entry with a refused result = %d %s, want its error result_invalid", status, b)
	}
	got = getJob(t, s, j.ID)
	if got.Status != errand.StatusFailed || string(got.Result) != "null" || got.Error.Code != errand.ERESULTINVALID ||
		!strings.Contains(got.Error.Detail, "result_schema") {
		t.Fatalf("after its last attempt's result was refused the job is %s, result %s, error %+v; want failed, result_invalid",
			got.Status, got.Result, got.Error)
	}
	evs, err := s.client().Events(ctxTimeout(t, 5e9), j.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs.Events {
		types = append(types, e.Type)
		if e.Type == errand.EventJobRetrying && !strings.Contains(string(e.Data), `"reason":"result_invalid"`) {
			t.Errorf("job.retrying data = %s, want reason result_invalid", e.Data)
		}
		if strings.Contains(string(e.Data), "elsewhere") {
			t.Errorf("the refused result reached event %s: %s", e.Type, e.Data)
		}
	}
	if strings.Join(types, ",") != "job.created,job.started,job.retrying,job.started,job.failed" {
		t.Errorf("events %v", types)
	}

	// A result that matches is the job's result; the operation shows its schema.
	k := submit(t, s, "render", nil)
	lease = leaseNext(t, s, "render")
	if status, _, b := s.do("POST", "/v1/leases/"+lease+"/complete", `{"result":{"url":"/r/1.pdf"}}`); status != 200 {
		t.Fatalf("a matching result = %d %s", status, b)
	}
	if got := getJob(t, s, k.ID); got.Status != errand.StatusSucceeded || string(got.Result) != `{"url":"/r/1.pdf"}` {
		t.Fatalf("job with a matching result: %s %s", got.Status, got.Result)
	}
	_, _, b = s.do("GET", "/v1/operations/render", "")
	var op struct {
		ResultSchema json.RawMessage `json:"result_schema"`
	}
	mustJSON(t, b, &op)
	if !strings.Contains(string(op.ResultSchema), `"required":["url"]`) {
		t.Errorf("GET /v1/operations/render = %s, want its result_schema", b)
	}
}

// leaseNext leases the next job of op (waiting up to 10 s for one) and returns the lease id.
func leaseNext(t *testing.T, s *server, op string) string {
	t.Helper()
	status, _, b := s.do("POST", "/v1/leases", fmt.Sprintf(`{"operations":[%q],"wait_seconds":10}`, op))
	var leased struct{ Leases []errand.Lease }
	mustJSON(t, b, &leased)
	if status != 200 || len(leased.Leases) != 1 {
		t.Fatalf("lease %s = %d %s, want one job", op, status, b)
	}
	return leased.Leases[0].ID
}
