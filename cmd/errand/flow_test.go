package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand"
)

// Flow control on the lease path (#15), on the real binary: pause and resume
// on two nodes, fairness under a flood, per-key concurrency on two nodes,
// start_rate, and an http target's push-back.

// flowConfig serves the flow-controlled operations, two tenants' admins and
// an operator who may lease every tenant's jobs and pause operations.
func flowConfig(extra string) string {
	return fmt.Sprintf(`
listen: "127.0.0.1:0"
log: { level: info }
operations:
  plain: {}
  fair:
    fairness: { key: tenant }
  weighted:
    fairness: { key: tenant, weights: { acme: 3 } }
  perkey:
    concurrency_key: { key: "input:/customer", limit: 2 }
  throttled:
    start_rate: "10/s"
%s
auth:
  roles:
    fleet: ["workers:lease:*@*", "operations:pause@*", "audit:read@*"]
  api_keys:
    - { name: boot-a, sha256: %s, roles: [admin], tenant: acme }
    - { name: boot-b, sha256: %s, roles: [admin], tenant: globex }
    - { name: boot-ops, sha256: %s, roles: [fleet], tenant: ops }
`, extra, sha256Hex(bootA), sha256Hex(bootB), sha256Hex(bootOps))
}

// submitBatch submits n jobs of operation as token, inputs made by input(i).
func submitBatch(t *testing.T, s *server, token, operation string, n int, input func(i int) string) []string {
	t.Helper()
	var ids []string
	for start := 0; start < n; start += 1000 {
		var jobs []string
		for i := start; i < min(n, start+1000); i++ {
			jobs = append(jobs, fmt.Sprintf(`{"operation":%q,"input":%s}`, operation, input(i)))
		}
		status, _, b := s.call("POST", "/v1/job-batches", `{"jobs":[`+strings.Join(jobs, ",")+`]}`, token)
		if status != 202 {
			t.Fatalf("POST /v1/job-batches = %d %s", status, b)
		}
		var out struct {
			Jobs []struct {
				Job   *struct{ ID string }
				Error any
			}
		}
		mustJSON(t, b, &out)
		for _, j := range out.Jobs {
			if j.Job == nil {
				t.Fatalf("a job of the batch was refused: %v", j.Error)
			}
			ids = append(ids, j.Job.ID)
		}
	}
	return ids
}

// leaseFrom leases as the operator.
func leaseFrom(t *testing.T, s *server, body string) []errand.Lease {
	t.Helper()
	status, _, b := s.call("POST", "/v1/leases", body, bootOps)
	if status != 200 {
		t.Fatalf("POST /v1/leases %s = %d %s", body, status, b)
	}
	var out struct{ Leases []errand.Lease }
	mustJSON(t, b, &out)
	return out.Leases
}

// completeAll completes leases as the operator.
func completeAll(t *testing.T, s *server, leases []errand.Lease) {
	t.Helper()
	if len(leases) == 0 {
		return
	}
	var cs []map[string]any
	for _, l := range leases {
		cs = append(cs, map[string]any{"lease_id": l.ID, "result": true})
	}
	b, _ := json.Marshal(map[string]any{"completions": cs})
	if status, _, body := s.call("POST", "/v1/leases/complete", string(b), bootOps); status != 200 {
		t.Errorf("complete = %d %s", status, body)
	}
}

// operationOf reads GET /v1/operations/{name} as token.
func operationOf(t *testing.T, s *server, name, token string) map[string]any {
	t.Helper()
	status, _, b := s.call("GET", "/v1/operations/"+name, "", token)
	if status != 200 {
		t.Fatalf("GET /v1/operations/%s = %d %s", name, status, b)
	}
	var v map[string]any
	mustJSON(t, b, &v)
	return v
}

// TestFlowPause: a pause on one node stops leases on both, submits are still
// accepted, it outlives a restart, only operations:pause@* may, it is
// audited, and a resume on the other node hands the jobs out again.
func TestFlowPause(t *testing.T) {
	t.Parallel()
	store := "ERRAND_STORE=" + pgURL(t)
	cfg := flowConfig("")
	a := startServerEnv(t, cfg, true, store)
	b := startServerEnv(t, cfg, true, store)
	submitBatch(t, a, bootA, "plain", 5, func(int) string { return `{}` })

	if status, code, _ := a.call("POST", "/v1/operations/plain/pause", "", bootA); status != 403 {
		t.Errorf("a tenant's admin pausing = %d %s, want 403 (operations:pause@* only)", status, code)
	}
	if status, _, body := a.call("POST", "/v1/operations/plain/pause", "", bootOps); status != 200 || !strings.Contains(string(body), `"paused":true`) {
		t.Fatalf("pause = %d %s", status, body)
	}
	for _, s := range []*server{a, b} {
		if got := leaseFrom(t, s, `{"operations":["plain"],"max_jobs":10,"wait_seconds":0.5}`); len(got) != 0 {
			t.Errorf("%s leased %d jobs of a paused operation", s.URL, len(got))
		}
	}
	submitBatch(t, b, bootB, "plain", 3, func(int) string { return `{}` }) // still accepted
	if v := operationOf(t, b, "plain", bootOps); v["paused"] != true {
		t.Errorf("GET operation on the other node = %v, want paused", v)
	}

	b.kill()
	b.start()
	if v := operationOf(t, b, "plain", bootOps); v["paused"] != true {
		t.Errorf("after a restart paused = %v, want true", v["paused"])
	}
	if got := leaseFrom(t, b, `{"operations":["plain"],"max_jobs":10}`); len(got) != 0 {
		t.Errorf("after a restart leased %d jobs of a paused operation", len(got))
	}

	// A worker waits on a; the resume on b wakes it.
	done := make(chan []errand.Lease, 1)
	go func() { done <- leaseFrom(t, a, `{"operations":["plain"],"max_jobs":10,"wait_seconds":10}`) }()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if status, _, body := b.call("POST", "/v1/operations/plain/resume", "", bootOps); status != 200 || !strings.Contains(string(body), `"paused":false`) {
		t.Fatalf("resume = %d %s", status, body)
	}
	got := <-done
	if len(got) != 8 {
		t.Errorf("after the resume the waiting worker leased %d jobs, want 8", len(got))
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the waiting worker on the other node got its jobs %v after the resume, want promptly", took)
	}
	var acts []string
	for _, e := range auditEntries(t, a, bootOps, "resource=plain") {
		if e.Outcome == errand.AuditOK {
			acts = append(acts, e.Action)
		}
	}
	if !slices.Contains(acts, "operations:pause") || !slices.Contains(acts, "operations:resume") {
		t.Errorf("audit of plain = %v, want operations:pause and operations:resume", acts)
	}
}

// TestFlowFairness: tenant acme floods 30,000 jobs, then globex submits one:
// globex's is among the first few leased; with weights acme:3 the shares of
// leases are within 10 % of 3:1; a lone tenant gets every lease.
func TestFlowFairness(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, flowConfig(""), true)
	submitBatch(t, s, bootA, "fair", 30000, func(i int) string { return fmt.Sprintf(`{"i":%d}`, i) })
	late := submitBatch(t, s, bootB, "fair", 1, func(int) string { return `{"late":true}` })[0]
	pos := -1
	for i := range 5 {
		ls := leaseFrom(t, s, `{"operations":["fair"],"max_jobs":1}`)
		if len(ls) != 1 {
			t.Fatalf("lease %d got %d jobs, want 1", i, len(ls))
		}
		if ls[0].Job.ID == late {
			pos = i
		}
		completeAll(t, s, ls)
	}
	if pos < 0 || pos > 2 {
		t.Errorf("globex's one job behind acme's 30,000 was leased at position %d, want among the first 3", pos)
	}

	v := operationOf(t, s, "weighted", bootOps)
	if f, _ := v["fairness"].(map[string]any); f["key"] != "tenant" || fmt.Sprint(f["weights"]) != "map[acme:3]" {
		t.Errorf("GET /v1/operations/weighted = %v, want fairness by tenant with weights acme: 3", v)
	}
	submitBatch(t, s, bootA, "weighted", 2000, func(int) string { return `{}` })
	submitBatch(t, s, bootB, "weighted", 2000, func(int) string { return `{}` })
	count := map[string]int{}
	for range 100 {
		ls := leaseFrom(t, s, `{"operations":["weighted"],"max_jobs":4}`)
		for _, l := range ls {
			j := getJobAs(t, s, l.Job.ID, bootA)
			if j != nil {
				count["acme"]++
			} else {
				count["globex"]++
			}
		}
		completeAll(t, s, ls)
	}
	ratio := float64(count["acme"]) / float64(max(count["globex"], 1))
	t.Logf("globex's job behind 30,000 leased at position %d; weights 3:1 gave %v (%.2f)", pos, count, ratio)
	if math.Abs(ratio-3)/3 > 0.1 || count["acme"]+count["globex"] != 400 {
		t.Errorf("400 leases with weights acme:3 went %v (ratio %.2f), want within 10 %% of 3:1", count, ratio)
	}

	// A lone tenant: every lease is full.
	if ls := leaseFrom(t, s, `{"operations":["fair"],"max_jobs":50}`); len(ls) != 50 {
		t.Errorf("a lone tenant's lease of 50 got %d", len(ls))
	}
}

// getJobAs reads a job as token; nil when it is not that tenant's.
func getJobAs(t *testing.T, s *server, id, token string) *errand.Job {
	t.Helper()
	status, _, b := s.call("GET", "/v1/jobs/"+id, "", token)
	if status != 200 {
		return nil
	}
	var j errand.Job
	mustJSON(t, b, &j)
	return &j
}

// TestFlowConcurrencyKey: with concurrency_key limit 2 and workers on two
// nodes over PostgreSQL, never more than 2 jobs of one customer run at once
// (from the jobs' started_at and finished_at), while other customers' run.
func TestFlowConcurrencyKey(t *testing.T) {
	t.Parallel()
	store := "ERRAND_STORE=" + pgURL(t)
	cfg := flowConfig("")
	nodes := []*server{startServerEnv(t, cfg, true, store), startServerEnv(t, cfg, true, store)}
	const customers, each = 4, 8
	ids := submitBatch(t, nodes[0], bootA, "perkey", customers*each, func(i int) string {
		return fmt.Sprintf(`{"customer":"c%d"}`, i%customers)
	})
	v := operationOf(t, nodes[1], "perkey", bootOps)
	if ck, _ := v["concurrency_key"].(map[string]any); ck["key"] != "input:/customer" || ck["limit"] != 2.0 || v["paused"] != false {
		t.Errorf("GET /v1/operations/perkey = %v, want concurrency_key input:/customer limit 2, not paused", v)
	}
	var wg sync.WaitGroup
	var done atomic.Int64
	var sawRunning atomic.Bool
	wg.Go(func() { // the view counts every node's running jobs
		for done.Load() < customers*each && !sawRunning.Load() {
			if n, _ := operationOf(t, nodes[0], "perkey", bootOps)["running"].(float64); n > 0 {
				sawRunning.Store(true)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	for w := range 8 {
		s := nodes[w%2]
		wg.Go(func() {
			deadline := time.Now().Add(60 * time.Second)
			for done.Load() < customers*each && time.Now().Before(deadline) {
				ls := leaseFrom(t, s, `{"operations":["perkey"],"max_jobs":3,"wait_seconds":1}`)
				time.Sleep(150 * time.Millisecond)
				completeAll(t, s, ls)
				done.Add(int64(len(ls)))
			}
		})
	}
	wg.Wait()
	if !sawRunning.Load() {
		t.Errorf("GET /v1/operations/perkey never showed a running job while 8 workers ran them")
	}
	type span struct{ from, to time.Time }
	byKey := map[string][]span{}
	var all []span
	for _, id := range ids {
		j := getJobAs(t, nodes[1], id, bootA)
		if j == nil || j.Status != errand.StatusSucceeded || j.StartedAt == nil || j.FinishedAt == nil {
			t.Fatalf("job %s = %+v, want succeeded", id, j)
		}
		var in struct{ Customer string }
		_ = json.Unmarshal(j.Input, &in)
		sp := span{*j.StartedAt, *j.FinishedAt}
		byKey[in.Customer] = append(byKey[in.Customer], sp)
		all = append(all, sp)
	}
	most := func(spans []span) int {
		n := 0
		for _, s := range spans {
			at := 0
			for _, o := range spans {
				if !o.from.After(s.from) && o.to.After(s.from) {
					at++
				}
			}
			n = max(n, at)
		}
		return n
	}
	for k, spans := range byKey {
		if n := most(spans); n > 2 {
			t.Errorf("customer %s had %d jobs running at once, want at most 2", k, n)
		}
	}
	if n := most(all); n < 4 {
		t.Errorf("at most %d jobs ran at once across customers, want other keys running (at least 4)", n)
	}
}

// TestFlowStartRate: start_rate 10/s with 20 idle workers: starts per second
// within 10 % of 10, on one node and across two nodes over PostgreSQL.
func TestFlowStartRate(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		testStartRate(t, startServerWith(t, flowConfig(""), true))
	})
	t.Run("postgres-two-nodes", func(t *testing.T) {
		t.Parallel()
		store := "ERRAND_STORE=" + pgURL(t)
		testStartRate(t, startServerEnv(t, flowConfig(""), true, store), startServerEnv(t, flowConfig(""), true, store))
	})
}

func testStartRate(t *testing.T, nodes ...*server) {
	s := nodes[0]
	if v := operationOf(t, s, "throttled", bootOps); v["start_rate"] != "10/s" {
		t.Errorf("GET /v1/operations/throttled start_rate = %v, want 10/s", v["start_rate"])
	}
	ids := submitBatch(t, s, bootA, "throttled", 41, func(int) string { return `{}` })
	var wg sync.WaitGroup
	var taken atomic.Int64
	for w := range 20 {
		s := nodes[w%len(nodes)]
		wg.Go(func() {
			for taken.Load() < 41 {
				ls := leaseFrom(t, s, `{"operations":["throttled"],"max_jobs":5,"wait_seconds":2}`)
				taken.Add(int64(len(ls)))
				completeAll(t, s, ls)
			}
		})
	}
	wg.Wait()
	var starts []time.Time
	for _, id := range ids {
		j := getJobAs(t, s, id, bootA)
		if j == nil || j.StartedAt == nil {
			t.Fatalf("job %s not started", id)
		}
		starts = append(starts, *j.StartedAt)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	rate := float64(len(starts)-1) / starts[len(starts)-1].Sub(starts[0]).Seconds()
	t.Logf("start_rate 10/s, 20 workers on %d node(s): %.2f starts/s", len(nodes), rate)
	if math.Abs(rate-10) > 1 {
		t.Errorf("41 starts over %v: %.2f/s, want 10/s within 10 %%", starts[len(starts)-1].Sub(starts[0]), rate)
	}
	for i := range starts {
		n := 0
		for _, o := range starts[i:] {
			if o.Sub(starts[i]) < time.Second {
				n++
			}
		}
		if n > 11 {
			t.Errorf("%d starts in the second from %v, want at most 11", n, starts[i])
			break
		}
	}
}

// TestFlowHTTPPushBack: an http target that answers 429 with Retry-After: 2
// gets no request before 2 s have passed, then calls at once ramp back up,
// and every job succeeds.
func TestFlowHTTPPushBack(t *testing.T) {
	t.Parallel()
	// The target pushes back on every call in the first 200 ms after the
	// first (the workers' first calls are in flight together); lastPush is
	// when it answered the last 429.
	var mu sync.Mutex
	var calls []time.Time
	var inflight, most int
	var firstCall, lastPush time.Time
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		now := time.Now()
		calls = append(calls, now)
		if firstCall.IsZero() {
			firstCall = now
		}
		push := now.Sub(firstCall) < 200*time.Millisecond
		inflight++
		if !push {
			most = max(most, inflight)
		}
		mu.Unlock()
		defer func() { mu.Lock(); inflight--; mu.Unlock() }()
		if push {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			mu.Lock()
			lastPush = time.Now()
			mu.Unlock()
			return
		}
		time.Sleep(100 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	defer target.Close()
	s := startServer(t, testConfig+fmt.Sprintf(`  upstream:
    retry: { max_attempts: 3, initial: 100ms, max: 1s }
    handler: { type: http, url: %q, workers: 4, timeout: 5s }
`, target.URL))
	var ids []string
	for range 24 {
		status, _, b := s.do("POST", "/v1/jobs", `{"operation":"upstream","input":{}}`)
		if status != 202 {
			t.Fatalf("submit = %d %s", status, b)
		}
		var j struct{ ID string }
		mustJSON(t, b, &j)
		ids = append(ids, j.ID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			j := getJob(t, s, id)
			if j.Status == errand.StatusSucceeded {
				break
			}
			if j.Status.Terminal() || time.Now().After(deadline) {
				t.Fatalf("job %s = %s, want succeeded", id, j.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range calls {
		if d := c.Sub(lastPush); d > 10*time.Millisecond && d < 2*time.Second-50*time.Millisecond {
			t.Errorf("a request came %v after the last 429 with Retry-After: 2", d)
		}
	}
	t.Logf("after the push-back: %d calls, at most %d at once", len(calls), most)
	if most < 2 {
		t.Errorf("after the push-back at most %d calls ran at once, want a ramp back up to more than 1", most)
	}
}

// TestFlowPauseRunner: errand's own exec runner idles while its operation
// is paused (across a restart) and runs the queued jobs once it is resumed.
func TestFlowPauseRunner(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig+"  runs-here:\n    handler: { type: exec, command: [\"cat\"] }\n")
	out, err := exec.Command(binary, "operations", "pause", "runs-here", "--server", s.URL).CombinedOutput()
	if err != nil || !regexp.MustCompile(`runs-here\s+true\s+0`).Match(out) {
		t.Fatalf("errand operations pause runs-here: %v\n%s", err, out)
	}
	var ids []string
	for range 3 {
		status, _, b := s.do("POST", "/v1/jobs", `{"operation":"runs-here","input":{"x":1}}`)
		if status != 202 {
			t.Fatalf("submit to a paused operation = %d %s, want 202", status, b)
		}
		var j struct{ ID string }
		mustJSON(t, b, &j)
		ids = append(ids, j.ID)
	}
	time.Sleep(time.Second)
	s.kill()
	s.start()
	time.Sleep(time.Second)
	for _, id := range ids {
		if j := getJob(t, s, id); j.Status != errand.StatusQueued {
			t.Errorf("job %s of the paused operation is %s after 2 s and a restart, want queued", id, j.Status)
		}
	}
	_, _, b := s.do("GET", "/v1/operations/runs-here", "")
	if !strings.Contains(string(b), `"paused":true`) {
		t.Errorf("GET operation after a restart = %s, want paused", b)
	}
	out, err = exec.Command(binary, "operations", "resume", "runs-here", "--server", s.URL, "-o", "json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"paused": false`) {
		t.Fatalf("errand operations resume runs-here -o json: %v\n%s", err, out)
	}
	for _, id := range ids {
		if j := waitJob(t, s, id); j.Status != errand.StatusSucceeded {
			t.Errorf("job %s after the resume = %s, want succeeded", id, j.Status)
		}
	}
}
