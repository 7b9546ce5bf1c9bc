package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/client"
	"github.com/errandhq/errand/worker"
)

// runWorker runs an SDK worker against s until the test ends.
func runWorker(t *testing.T, s *server, op string, h worker.Handler) {
	t.Helper()
	w, err := worker.New(worker.Config{URL: s.URL, Operations: []string{op}, Concurrency: 4, PollWait: 2 * time.Second,
		ShutdownTimeout: time.Second, Name: "test-" + op}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestE2EFlow(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	code, h, body := s.do("POST", "/v1/jobs", `{"operation":"generate-report","input":{"type":"monthly"}}`)
	if code != http.StatusAccepted || !strings.HasPrefix(h.Get("Location"), "/v1/jobs/job_") || h.Get("Retry-After") == "" {
		t.Fatalf("submit = %d Location %q Retry-After %q, want 202 with both", code, h.Get("Location"), h.Get("Retry-After"))
	}
	var j errand.Job
	mustJSON(t, body, &j)
	if j.Status != errand.StatusQueued || h.Get("Location") != "/v1/jobs/"+j.ID {
		t.Fatalf("submitted job = %s at %s", j.Status, h.Get("Location"))
	}
	runWorker(t, s, "generate-report", func(ctx context.Context, wj *worker.Job) (any, error) {
		if err := wj.Progress(ctx, 50, "rendering"); err != nil {
			return nil, err
		}
		var in struct{ Type string }
		json.Unmarshal(wj.Input, &in)
		return map[string]string{"url": "/reports/" + in.Type + ".pdf"}, nil
	})
	got, err := s.client().Wait(ctxTimeout(t, 20*time.Second), j.ID, 15*time.Second)
	if err != nil || got.Status != errand.StatusSucceeded || string(got.Result) != `{"url":"/reports/monthly.pdf"}` {
		t.Fatalf("after the worker: %+v, %v; want succeeded with the report url", got, err)
	}
	if got.Progress == nil || got.Progress.Percent != 50 || got.Attempt != 1 {
		t.Fatalf("progress %+v attempt %d, want 50%% at attempt 1", got.Progress, got.Attempt)
	}
	events, err := s.client().Events(context.Background(), j.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events.Events {
		types = append(types, e.Type)
	}
	if want := "job.created job.started job.progress job.succeeded"; strings.Join(types, " ") != want {
		t.Fatalf("events = %v, want %s", types, want)
	}
	// The route alias takes the input as the body.
	code, h, _ = s.do("POST", "/generate-report", `{"type":"weekly"}`)
	if code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("POST /generate-report = %d, want 202", code)
	}
	_, _, ops := s.do("GET", "/v1/operations", "")
	if !strings.Contains(string(ops), `"name":"generate-report"`) || !strings.Contains(string(ops), `"route":"/generate-report"`) {
		t.Fatalf("GET /v1/operations = %s", ops)
	}
}

func TestE2EPreferWait(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	runWorker(t, s, "echo", func(ctx context.Context, j *worker.Job) (any, error) {
		time.Sleep(100 * time.Millisecond)
		return json.RawMessage(j.Input), nil
	})
	start := time.Now()
	code, h, body := s.do("POST", "/v1/jobs", `{"operation":"echo","input":{"n":1}}`, "Prefer", "wait=5")
	if code != http.StatusOK || h.Get("Preference-Applied") != "wait=5" || !strings.Contains(string(body), `"result":{"n":1}`) {
		t.Fatalf("quick job with wait=5 = %d Preference-Applied %q %s; want 200 with the result", code, h.Get("Preference-Applied"), body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("quick job answered after %v", d)
	}
	// Nobody leases generate-report here: the wait runs out and the answer is 202.
	start = time.Now()
	code, h, _ = s.do("POST", "/v1/jobs", `{"operation":"generate-report","input":{"type":"weekly"}}`, "Prefer", "wait=5")
	d := time.Since(start)
	if code != http.StatusAccepted || h.Get("Preference-Applied") != "" || d < 5*time.Second || d > 8*time.Second {
		t.Fatalf("slow job with wait=5 = %d after %v (Preference-Applied %q), want 202 after about 5s", code, d, h.Get("Preference-Applied"))
	}
	// The operation's default wait applies without a header; respond-async overrides it.
	start = time.Now()
	code, _, _ = s.do("POST", "/v1/jobs", `{"operation":"hybrid"}`)
	if d := time.Since(start); code != http.StatusAccepted || d < 3*time.Second {
		t.Fatalf("hybrid default wait: %d after %v, want 202 after 3s", code, d)
	}
	start = time.Now()
	code, h, _ = s.do("POST", "/v1/jobs", `{"operation":"hybrid"}`, "Prefer", "respond-async")
	if d := time.Since(start); code != http.StatusAccepted || d > time.Second || h.Get("Preference-Applied") != "respond-async" {
		t.Fatalf("respond-async: %d after %v, applied %q", code, d, h.Get("Preference-Applied"))
	}
	// GET with Prefer: wait long-polls until the job finishes.
	sub, _ := s.client().Submit(context.Background(), "echo", map[string]int{"n": 2}, nil)
	code, _, body = s.do("GET", "/v1/jobs/"+sub.ID, "", "Prefer", "wait=5")
	if code != http.StatusOK || !strings.Contains(string(body), `"status":"succeeded"`) {
		t.Fatalf("GET with wait=5 = %d %s, want the succeeded job", code, body)
	}
}

func TestE2EIdempotency(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	body := `{"operation":"echo","input":{"order":42}}`
	code1, h1, b1 := s.do("POST", "/v1/jobs", body, "Idempotency-Key", "order-42")
	code2, h2, b2 := s.do("POST", "/v1/jobs", `{"input":{"order":42},  "operation":"echo"}`, "Idempotency-Key", "order-42")
	var j1, j2 errand.Job
	mustJSON(t, b1, &j1)
	mustJSON(t, b2, &j2)
	if code1 != 202 || code2 != 202 || j1.ID != j2.ID || h1.Get("Idempotent-Replayed") != "" || h2.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s, %d %s (replayed %q); want the same job, replayed", code1, j1.ID, code2, j2.ID, h2.Get("Idempotent-Replayed"))
	}
	code, _, b := s.do("POST", "/v1/jobs", `{"operation":"echo","input":{"order":43}}`, "Idempotency-Key", "order-42")
	if code != 422 || !strings.Contains(string(b), `"code":"idempotency_key_reused"`) {
		t.Fatalf("same key, other body = %d %s; want 422 idempotency_key_reused", code, b)
	}
}

func TestE2EBadInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	c := s.client()
	sub, _ := c.Submit(context.Background(), "echo", nil, nil)
	var leased struct{ Leases []errand.Lease }
	_, _, lb := s.do("POST", "/v1/leases", `{"operations":["echo"]}`)
	mustJSON(t, lb, &leased)
	lease := leased.Leases[0].ID
	s.do("POST", "/v1/leases/"+lease+"/complete", `{"result":1}`)
	big := `{"operation":"echo","input":"` + strings.Repeat("x", 70000) + `"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", "/v1/jobs", `{"operation":`, 400, "malformed_json"},
		{"not an object", "POST", "/v1/jobs", `[1,2]`, 400, "malformed_json"},
		{"trailing data", "POST", "/v1/jobs", `{"operation":"echo"} {}`, 400, "malformed_json"},
		{"empty body", "POST", "/v1/jobs", ``, 400, "malformed_json"},
		{"schema violation", "POST", "/v1/jobs", `{"operation":"generate-report","input":{"type":"daily"}}`, 422, "validation_failed"},
		{"route schema violation", "POST", "/generate-report", `{"kind":"monthly"}`, 422, "validation_failed"},
		{"route malformed", "POST", "/generate-report", `{"type":`, 400, "malformed_json"},
		{"wrong type", "POST", "/v1/jobs", `{"operation":"echo","priority":"high"}`, 422, "validation_failed"},
		{"unknown field", "POST", "/v1/jobs", `{"operation":"echo","max_attemps":3}`, 422, "validation_failed"},
		{"out of range", "POST", "/v1/jobs", `{"operation":"echo","max_attempts":0}`, 422, "validation_failed"},
		{"bad run_at", "POST", "/v1/jobs", `{"operation":"echo","run_at":"tomorrow"}`, 422, "validation_failed"},
		{"missing operation", "POST", "/v1/jobs", `{"input":{}}`, 422, "validation_failed"},
		{"unknown operation", "POST", "/v1/jobs", `{"operation":"nope"}`, 404, "operation_not_found"},
		{"oversized body", "POST", "/v1/jobs", big, 413, "body_too_large"},
		{"bad cursor", "GET", "/v1/jobs?cursor=bm9wZQ", "", 400, "invalid_cursor"},
		{"bad limit", "GET", "/v1/jobs?limit=lots", "", 400, "invalid_request"},
		{"bad status filter", "GET", "/v1/jobs?status=done", "", 400, "invalid_request"},
		{"bad event cursor", "GET", "/v1/jobs/" + sub.ID + "/events?after=x", "", 400, "invalid_cursor"},
		{"unknown job", "GET", "/v1/jobs/job_01M81FYDCTE1X91SVCMDMS18K4", "", 404, "job_not_found"},
		{"garbage job id", "GET", "/v1/jobs/../../etc/passwd", "", 404, "not_found"},
		{"stale lease", "POST", "/v1/leases/" + lease + "/complete", `{"result":2}`, 409, "lease_expired"},
		{"stale heartbeat", "POST", "/v1/leases/" + lease + "/heartbeat", `{}`, 409, "lease_expired"},
		{"forged lease", "POST", "/v1/leases/lease_nonsense/fail", `{}`, 409, "lease_expired"},
		{"lease unknown op", "POST", "/v1/leases", `{"operations":["nope"]}`, 404, "operation_not_found"},
		{"lease no ops", "POST", "/v1/leases", `{"max_jobs":1}`, 400, "invalid_request"},
		{"lease too many", "POST", "/v1/leases", `{"operations":["echo"],"max_jobs":100000}`, 400, "invalid_request"},
		{"bad progress", "POST", "/v1/leases/" + lease + "/heartbeat", `{"progress":{"percent":500}}`, 400, "invalid_request"},
		{"delete running", "DELETE", "/v1/jobs/" + must(c.Submit(context.Background(), "echo", nil, nil)).ID, "", 409, "job_not_terminal"},
		{"retry queued", "POST", "/v1/jobs/" + must(c.Submit(context.Background(), "echo", nil, nil)).ID + "/retry", "", 409, "conflict"},
		{"method not allowed", "PATCH", "/v1/jobs", "", 405, "method_not_allowed"},
		{"no route", "GET", "/v2/anything", "", 404, "not_found"},
		{"callback not yet", "POST", "/v1/jobs", `{"operation":"echo","callback_url":"https://x.example/h"}`, 422, "validation_failed"},
	}
	for _, tt := range tests {
		code, h, b := s.do(tt.method, tt.path, tt.body)
		var p errand.Problem
		if err := json.Unmarshal(b, &p); err != nil || code != tt.status || p.Code != tt.code || p.Status != tt.status ||
			h.Get("Content-Type") != "application/problem+json" || p.Detail == "" {
			t.Errorf("%s: %s %s = %d %s (%s); want %d %s as problem+json", tt.name, tt.method, tt.path, code, truncate(b), h.Get("Content-Type"), tt.status, tt.code)
		}
	}
	// Nothing bad input did changed what is stored, and the server is still up.
	if code, _, _ := s.do("GET", "/healthz", ""); code != 200 {
		t.Fatalf("healthz after bad input = %d", code)
	}
	page, err := c.List(context.Background(), client.ListOptions{Limit: 100})
	if err != nil || len(page.Jobs) != 3 {
		t.Fatalf("jobs after bad input = %d, %v; want the 3 good submits", len(page.Jobs), err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

func TestE2EJobLifecycle(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	c := s.client()
	ctx := context.Background()
	delayed, err := c.Submit(ctx, "echo", nil, &client.SubmitOptions{Delay: time.Hour})
	if err != nil || delayed.Status != errand.StatusScheduled {
		t.Fatalf("delayed submit = %v, %v; want scheduled", delayed, err)
	}
	canceled, err := c.Cancel(ctx, delayed.ID)
	if err != nil || canceled.Status != errand.StatusCanceled {
		t.Fatalf("cancel = %v, %v", canceled, err)
	}
	retried, err := c.Retry(ctx, delayed.ID)
	if err != nil || retried.Status != errand.StatusQueued {
		t.Fatalf("retry = %v, %v", retried, err)
	}
	c.Cancel(ctx, delayed.ID)
	if err := c.Delete(ctx, delayed.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.Get(ctx, delayed.ID); err == nil || err.(*client.Error).StatusCode != 404 {
		t.Fatalf("get after delete = %v, want 404", err)
	}
	// A worker that fails: the job retries with backoff, then fails for good.
	runWorker(t, s, "generate-report", func(ctx context.Context, j *worker.Job) (any, error) {
		return nil, fmt.Errorf("attempt %d broke", j.Attempt)
	})
	j, _ := c.Submit(ctx, "generate-report", map[string]string{"type": "weekly"}, &client.SubmitOptions{MaxAttempts: 3})
	got, err := c.Wait(ctx, j.ID, 20*time.Second)
	if err != nil || got.Status != errand.StatusFailed || got.Attempt != 3 || !strings.Contains(got.Error.Detail, "attempt 3 broke") {
		t.Fatalf("failing job = %+v, %v; want failed after 3 attempts", got, err)
	}
	page, _ := c.List(ctx, client.ListOptions{Status: errand.StatusFailed})
	if len(page.Jobs) != 1 || page.Jobs[0].ID != j.ID {
		t.Fatalf("list status=failed = %d jobs", len(page.Jobs))
	}
}

// TestE2ESubmitBatch: POST /v1/job-batches stores many jobs with one commit,
// each accepted or refused on its own; idempotency keys work per job.
func TestE2ESubmitBatch(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	body := `{"jobs":[{"operation":"echo","input":{"n":1}},{"operation":"nope"},
		{"operation":"generate-report","input":{"type":"yearly"}},{"operation":"echo","idempotency_key":"k1"},
		{"operation":"echo","run_at":"tomorrow"},{"operation":"echo","idempotency_key":"k1"}]}`
	status, _, b := s.do("POST", "/v1/job-batches", body)
	var res struct {
		Jobs []struct {
			Job   *errand.Job
			Error *errand.Problem
		}
	}
	mustJSON(t, b, &res)
	if status != 202 || len(res.Jobs) != 6 {
		t.Fatalf("batch = %d %s", status, b)
	}
	want := []string{"", "operation_not_found", "validation_failed", "", "validation_failed", ""}
	for i, r := range res.Jobs {
		got := ""
		if r.Error != nil {
			got = r.Error.Code
		} else if r.Job == nil || r.Job.Status != errand.StatusQueued {
			t.Fatalf("entry %d: no queued job: %s", i, b)
		}
		if got != want[i] {
			t.Errorf("entry %d: %q, want %q", i, got, want[i])
		}
	}
	if res.Jobs[3].Job.ID != res.Jobs[5].Job.ID {
		t.Errorf("the same idempotency key made two jobs: %s and %s", res.Jobs[3].Job.ID, res.Jobs[5].Job.ID)
	}
	for _, i := range []int{0, 3} {
		if status, _, _ := s.do("GET", "/v1/jobs/"+res.Jobs[i].Job.ID, ""); status != 200 {
			t.Errorf("job %d of the batch: GET %d", i, status)
		}
	}
	if status, _, b := s.do("POST", "/v1/job-batches", `{"jobs":[{"operation":"nope"}]}`); status != 422 {
		t.Errorf("a batch with nothing accepted = %d %s, want 422", status, b)
	}
	if status, _, b := s.do("POST", "/v1/job-batches", `{"jobs":[]}`); status != 400 {
		t.Errorf("an empty batch = %d %s, want 400", status, b)
	}
}

// TestE2ECompleteBatch completes leases in one call: each entry succeeds or
// fails on its own; "brief" answers ids and statuses instead of whole jobs.
func TestE2ECompleteBatch(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	s.do("POST", "/v1/job-batches", `{"jobs":[{"operation":"echo","input":{"n":1}},{"operation":"echo","input":{"n":2}},
		{"operation":"echo","input":{"n":3}}]}`)
	status, _, b := s.do("POST", "/v1/leases", `{"operations":["echo"],"max_jobs":3}`)
	var leased struct{ Leases []errand.Lease }
	mustJSON(t, b, &leased)
	if status != 200 || len(leased.Leases) != 3 {
		t.Fatalf("lease = %d %s", status, b)
	}
	l := leased.Leases
	status, _, b = s.do("POST", "/v1/leases/complete", fmt.Sprintf(`{"brief":true,"completions":[
		{"lease_id":%q,"result":{"ok":1}},{"lease_id":"lease_nope.x","result":{}},{"lease_id":%q,"result":{"ok":2}}]}`,
		l[0].ID, l[1].ID))
	var brief struct {
		Results []map[string]json.RawMessage
	}
	mustJSON(t, b, &brief)
	if status != 200 || len(brief.Results) != 3 {
		t.Fatalf("brief batch = %d %s", status, b)
	}
	for i, r := range brief.Results {
		if _, ok := r["job"]; ok {
			t.Errorf("entry %d of a brief answer carries the job: %s", i, b)
		}
	}
	if string(brief.Results[0]["job_id"]) != `"`+l[0].Job.ID+`"` || string(brief.Results[0]["status"]) != `"succeeded"` ||
		string(brief.Results[2]["job_id"]) != `"`+l[1].Job.ID+`"` || brief.Results[1]["error"] == nil {
		t.Fatalf("brief answer = %s", b)
	}
	var p errand.Problem
	mustJSON(t, brief.Results[1]["error"], &p)
	if p.Code != errand.ELEASEEXPIRED && p.Code != errand.ENOTFOUND {
		t.Errorf("a made-up lease id: %+v", p)
	}
	// Without brief, the answer carries the job as it ended; a lease completed
	// already is refused.
	status, _, b = s.do("POST", "/v1/leases/complete", fmt.Sprintf(`{"completions":[
		{"lease_id":%q,"result":{"ok":3}},{"lease_id":%q,"result":{}}]}`, l[2].ID, l[0].ID))
	var full struct {
		Results []struct {
			LeaseID string `json:"lease_id"`
			Job     *errand.Job
			Error   *errand.Problem
		}
	}
	mustJSON(t, b, &full)
	if status != 200 || len(full.Results) != 2 || full.Results[0].Job == nil ||
		string(full.Results[0].Job.Result) != `{"ok":3}` || full.Results[0].Job.Status != errand.StatusSucceeded ||
		full.Results[1].Error == nil || full.Results[1].Error.Code != errand.ELEASEEXPIRED {
		t.Fatalf("full answer = %d %s", status, b)
	}
	// Bad bodies are refused whole.
	for _, body := range []string{`{"completions":[]}`, `{"completions":[{"lease_id":1}]}`, `{"brief":"yes","completions":[]}`, `{"extra":1}`} {
		if status, _, b := s.do("POST", "/v1/leases/complete", body); status != 400 && status != 422 {
			t.Errorf("%s → %d %s, want 400 or 422", body, status, b)
		}
	}
}

// TestE2ECompleteAndLease: a lease request that carries the worker's
// completions finishes them in the same commit as it leases the next jobs,
// answers each in "completed" (a lease not held fails its entry only), keeps
// them when no job is left to lease, and refuses a malformed one whole.
func TestE2ECompleteAndLease(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	s.do("POST", "/v1/job-batches", `{"jobs":[{"operation":"echo","input":{"n":1}},{"operation":"echo","input":{"n":2}}]}`)
	lease := func(body string) (leases []errand.Lease, completed []map[string]json.RawMessage) {
		t.Helper()
		status, _, b := s.do("POST", "/v1/leases", body)
		var res struct {
			Leases    []errand.Lease
			Completed []map[string]json.RawMessage
		}
		mustJSON(t, b, &res)
		if status != 200 {
			t.Fatalf("POST /v1/leases %s = %d %s", body, status, b)
		}
		return res.Leases, res.Completed
	}
	first, done := lease(`{"operations":["echo"]}`)
	if len(first) != 1 || done != nil {
		t.Fatalf("a plain lease: %d leases, completed %v; want one lease and no completed", len(first), done)
	}
	next, done := lease(fmt.Sprintf(`{"operations":["echo"],"completions":[{"lease_id":%q,"result":{"ok":1}},{"lease_id":"lease_nope.x","result":{}}]}`, first[0].ID))
	if len(next) != 1 || next[0].Job.ID == first[0].Job.ID {
		t.Fatalf("the lease beside the completions: %+v; want the other job", next)
	}
	if len(done) != 2 || string(done[0]["job_id"]) != `"`+first[0].Job.ID+`"` || string(done[0]["status"]) != `"succeeded"` || done[1]["error"] == nil {
		t.Fatalf("completed = %v; want the first succeeded and the made-up lease refused", done)
	}
	// Nothing left to lease: the completion is kept all the same.
	none, done := lease(fmt.Sprintf(`{"operations":["echo"],"wait_seconds":0.2,"completions":[{"lease_id":%q,"result":{"ok":2}}]}`, next[0].ID))
	if len(none) != 0 || len(done) != 1 || string(done[0]["status"]) != `"succeeded"` {
		t.Fatalf("with the queue empty: leases %v, completed %v; want none and the completion succeeded", none, done)
	}
	for _, l := range []errand.Lease{first[0], next[0]} {
		_, _, b := s.do("GET", "/v1/jobs/"+l.Job.ID, "")
		var j errand.Job
		mustJSON(t, b, &j)
		if j.Status != errand.StatusSucceeded || len(j.Result) == 0 {
			t.Errorf("job %s after its completion rode on a lease: %s %s", l.Job.ID, j.Status, j.Result)
		}
	}
	for _, body := range []string{`{"operations":["echo"],"completions":[{"lease_id":1}]}`, `{"operations":["echo"],"completions":{}}`} {
		if status, _, b := s.do("POST", "/v1/leases", body); status != 400 && status != 422 {
			t.Errorf("%s → %d %s, want 400 or 422", body, status, b)
		}
	}
}
