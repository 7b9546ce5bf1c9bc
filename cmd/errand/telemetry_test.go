package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/telemetry/otlptest"
	"github.com/errandhq/errand/worker"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The observability suite on the real binary: /metrics after a known
// workload (checked by promtool), who may scrape it, one job's trace from
// the submit to its webhook, usage per tenant on one node and on two.

// scrape reads /metrics at base as token ("" for none) and returns the status and body.
func scrape(t *testing.T, base, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", base, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// metric is the value of one series (its name and labels, as exposed: the
// labels sorted by name), or -1 when the body has none.
func metric(body, series string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.Fields(v)[0], 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// promtool runs `promtool check metrics` on body. Where promtool is not
// installed (test.sh installs it) the check is skipped, except under CI=true.
func promtool(t *testing.T, body string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (Debian package prometheus); test.sh installs it")
		}
		t.Log("promtool is not installed: its check is skipped (test.sh installs it)")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// idInLabel finds an id (job, delivery, lease) in any label value.
var idInLabel = regexp.MustCompile(`\{[^}]*(job|msg|lease)_[0-9A-HJKMNP-TV-Z]{26}`)

// TestE2EMetrics: after N submits, M completions, K failures and a webhook
// receiver that fails once, /metrics passes promtool, counts exactly that by
// operation, has observations in its histograms and no id in any label.
func TestE2EMetrics(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	hits := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		first := hits == 1
		mu.Unlock()
		if first {
			http.Error(w, "not yet", http.StatusInternalServerError)
		}
	}))
	defer hook.Close()
	s := startServer(t, testConfig+"  work: {}\n"+`
metrics: { queue_interval: 100ms }
webhooks: { timeout: 2s, retry_schedule: [0s, 200ms, 1s] }
`)
	createEndpoint(t, s, hook.URL+"/failed", "job.failed")
	const n, m, k = 20, 11, 5
	for i := range n {
		if code, _, b := s.do("POST", "/v1/jobs", fmt.Sprintf(`{"operation":"work","input":{"i":%d}}`, i)); code != 202 {
			t.Fatalf("submit: %d %s", code, b)
		}
	}
	code, _, b := s.do("POST", "/v1/leases", fmt.Sprintf(`{"operations":["work"],"max_jobs":%d,"wait_seconds":5}`, m+k))
	var leased struct{ Leases []errand.Lease }
	mustJSON(t, b, &leased)
	if code != 200 || len(leased.Leases) != m+k {
		t.Fatalf("lease %d jobs: %d, %d leases", m+k, code, len(leased.Leases))
	}
	var done []map[string]any
	for _, l := range leased.Leases[:m] {
		done = append(done, map[string]any{"lease_id": l.ID, "result": map[string]int{"ok": 1}})
	}
	body, _ := json.Marshal(map[string]any{"completions": done})
	if code, _, b := s.do("POST", "/v1/leases/complete", string(body)); code != 200 {
		t.Fatalf("complete: %d %s", code, b)
	}
	for _, l := range leased.Leases[m:] {
		if code, _, b := s.do("POST", "/v1/leases/"+l.ID+"/fail", `{"error":{"code":"boom"},"retry":false}`); code != 200 {
			t.Fatalf("fail: %d %s", code, b)
		}
	}
	// The receiver answers the first delivery 500; it is sent again and every job.failed is delivered.
	var text string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, text = scrape(t, s.URL, "")
		if metric(text, `errand_webhook_deliveries_total{outcome="succeeded"}`) == k || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(150 * time.Millisecond) // past the queue gauges' interval
	_, text = scrape(t, s.URL, "")
	promtool(t, text)
	for series, want := range map[string]float64{
		`errand_jobs_submitted_total{operation="work"}`:                                           n,
		`errand_jobs_started_total{operation="work"}`:                                             m + k,
		`errand_jobs_succeeded_total{operation="work"}`:                                           m,
		`errand_jobs_failed_total{operation="work"}`:                                              k,
		`errand_jobs_canceled_total{operation="work"}`:                                            0,
		`errand_jobs_retried_total{operation="work",reason="failed"}`:                             0,
		`errand_jobs_lease_expirations_total{operation="work"}`:                                   0,
		`errand_jobs_submitted_total{operation="echo"}`:                                           0,
		`errand_jobs_queued{operation="work"}`:                                                    n - m - k,
		`errand_jobs_running{operation="work"}`:                                                   0,
		`errand_job_run_duration_seconds_count{operation="work"}`:                                 m + k,
		`errand_job_queue_wait_seconds_count{operation="work"}`:                                   m + k,
		`errand_job_duration_seconds_count{operation="work"}`:                                     m + k,
		`errand_events_appended_total{kind="job"}`:                                                n + 2*(m+k),
		`errand_webhook_deliveries_total{outcome="failed"}`:                                       1,
		`errand_webhook_deliveries_total{outcome="succeeded"}`:                                    k,
		`errand_webhook_delivery_duration_seconds_count`:                                          k + 1,
		`errand_http_requests_total{code="2xx",method="POST",route="/v1/jobs"}`:                   n,
		`errand_http_request_duration_seconds_count{method="POST",route="/v1/jobs"}`:              n,
		`errand_http_requests_total{code="2xx",method="POST",route="/v1/leases/{lease_id}/fail"}`: k,
	} {
		if got := metric(text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	for _, series := range []string{"errand_store_commit_duration_seconds_count", "errand_store_commit_calls_count",
		`errand_build_info{goversion="` + goVersion() + `",revision="unknown",version="dev"}`} {
		if got := metric(text, series); got < 1 {
			t.Errorf("%s = %v, want observations", series, got)
		}
	}
	if id := idInLabel.FindString(text); id != "" {
		t.Errorf("an id in a label: %s", id)
	}
}

func goVersion() string {
	out, _ := exec.Command("go", "env", "GOVERSION").Output()
	return strings.TrimSpace(string(out))
}

// telemetryAuthConfig serves two tenants' admins and an operator who may
// scrape metrics and read every tenant's usage.
func telemetryAuthConfig(extra string) string {
	return testConfig + "  work: {}\n" + fmt.Sprintf(`
auth:
  roles:
    observer: ["metrics:read@*", "usage:read@*"]
    fleet: ["workers:lease:*@*"]
  api_keys:
    - { name: boot-a, sha256: %s, roles: [admin], tenant: acme }
    - { name: boot-b, sha256: %s, roles: [admin], tenant: globex }
    - { name: observer, sha256: %s, roles: [observer, fleet], tenant: ops }
`, sha256Hex(bootA), sha256Hex(bootB), sha256Hex(bootOps)) + extra
}

// TestE2EMetricsAccess: /metrics takes metrics:read@* (a tenant's admin is
// refused, an anonymous caller is not authenticated, both counted by
// reason); with metrics.listen it is served there alone, without
// authentication, and not on the API's address.
func TestE2EMetricsAccess(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, telemetryAuthConfig(""), true)
	if code, _ := scrape(t, s.URL, ""); code != 401 {
		t.Errorf("anonymous scrape: %d, want 401", code)
	}
	if code, _ := scrape(t, s.URL, bootA); code != 403 {
		t.Errorf("a tenant's admin scrapes: %d, want 403 (metrics are every tenant's)", code)
	}
	code, text := scrape(t, s.URL, bootOps)
	if code != 200 {
		t.Fatalf("the operator scrapes: %d %s", code, text)
	}
	promtool(t, text)
	if got := metric(text, `errand_auth_failures_total{reason="missing"}`); got != 1 {
		t.Errorf("auth failures (missing) = %v, want 1", got)
	}
	if got := metric(text, `errand_auth_denials_total{action="metrics:read@*"}`); got != 1 {
		t.Errorf("denials of metrics:read@* = %v, want 1", got)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	own := startServerWith(t, telemetryAuthConfig(fmt.Sprintf("metrics: { listen: %q }\n", addr)), true)
	if code, text := scrape(t, "http://"+addr, ""); code != 200 || metric(text, `errand_jobs_submitted_total{operation="work"}`) != 0 {
		t.Errorf("metrics.listen without credentials: %d, want 200 with the job metrics", code)
	}
	if code, _ := scrape(t, own.URL, bootOps); code != 404 {
		t.Errorf("/metrics on the API's address with metrics.listen set: %d, want 404", code)
	}
}

// TestE2ETrace: a job submitted with a traceparent and completed by an SDK
// worker, with a webhook delivery, is one trace: the submit's server span
// under the caller's, its commit, the attempt under the submit, the lease's
// and completion's spans and the worker's (with the handler's own) under the
// attempt, the delivery under the submit — whose traceparent the receiver
// saw; log lines of a traced request carry its trace id.
func TestE2ETrace(t *testing.T) {
	t.Parallel()
	rcv := otlptest.New(true)
	defer rcv.Close()
	var mu sync.Mutex
	var hookTP []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hookTP = append(hookTP, r.Header.Get("traceparent"))
		mu.Unlock()
	}))
	defer hook.Close()
	s := startServer(t, testConfig+"  work: {}\n"+fmt.Sprintf("tracing: { endpoint: %q }\n", rcv.URL))
	createEndpoint(t, s, hook.URL+"/done", "job.succeeded")

	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(rcv.URL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "test-worker"))))
	defer tp.Shutdown(context.Background())
	w, err := worker.New(worker.Config{URL: s.URL, Operations: []string{"work"}, PollWait: time.Second, TracerProvider: tp},
		func(ctx context.Context, j *worker.Job) (any, error) {
			_, span := tp.Tracer("test").Start(ctx, "render")
			span.End()
			return map[string]bool{"ok": true}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(context.Background())
	defer stop()
	go w.Run(wctx)

	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	code, _, b := s.do("POST", "/v1/jobs", `{"operation":"work","input":{}}`, "traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	if code != 202 {
		t.Fatalf("submit: %d %s", code, b)
	}
	var j errand.Job
	mustJSON(t, b, &j)
	if done := waitJob(t, s, j.ID); done.Status != errand.StatusSucceeded {
		t.Fatalf("job %s", done.Status)
	}
	names := []string{"POST /v1/jobs", "store commit", "attempt work", "job.started work", "process work", "render",
		"job.succeeded work", "webhook POST"}
	spans, ok := rcv.Await(20*time.Second, func([]otlptest.Span) bool {
		have := map[string]bool{}
		for _, s := range rcv.Trace(traceID) {
			have[s.Name] = true
		}
		for _, n := range names {
			if !have[n] {
				return false
			}
		}
		return true
	})
	byName := map[string]otlptest.Span{}
	for _, sp := range spans {
		if sp.TraceID == traceID {
			if _, dup := byName[sp.Name]; !dup || sp.Name != "store commit" {
				byName[sp.Name] = sp
			}
		}
	}
	if !ok {
		t.Fatalf("the trace has %v, want %v", keys(byName), names)
	}
	parent := func(child, parent string) {
		t.Helper()
		if byName[child].ParentID != byName[parent].SpanID {
			t.Errorf("%q's parent is %s, want %q (%s)", child, byName[child].ParentID, parent, byName[parent].SpanID)
		}
	}
	if sub := byName["POST /v1/jobs"]; sub.ParentID != callerSpan || sub.Kind != "SPAN_KIND_SERVER" || sub.Service != "errand" {
		t.Errorf("submit span = %+v, want errand's server span under the caller's %s", sub, callerSpan)
	}
	parent("store commit", "POST /v1/jobs")
	parent("attempt work", "POST /v1/jobs")
	parent("job.started work", "attempt work")
	parent("process work", "attempt work")
	parent("render", "process work")
	parent("job.succeeded work", "attempt work")
	parent("webhook POST", "POST /v1/jobs")
	if byName["process work"].Service != "test-worker" {
		t.Errorf("the worker's span comes from %q, want the worker's own service", byName["process work"].Service)
	}
	order := []string{"POST /v1/jobs", "attempt work", "process work", "render", "job.succeeded work", "webhook POST"}
	for i := 1; i < len(order); i++ {
		if byName[order[i]].Start.Before(byName[order[i-1]].Start) {
			t.Errorf("%q starts before %q", order[i], order[i-1])
		}
	}
	mu.Lock()
	got := slices.Clone(hookTP)
	mu.Unlock()
	if want := "00-" + traceID + "-" + byName["webhook POST"].SpanID + "-01"; len(got) != 1 || got[0] != want {
		t.Errorf("the receiver saw traceparent %q, want %q", got, want)
	}

	// A refused request is logged (at info) with the trace it belongs to.
	s.do("POST", "/v1/jobs", `{"operation":"nope"}`, "traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	waitLog(t, s, `"trace_id":"`+traceID+`"`, 10*time.Second)
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// usageTotals reads /v1/usage as token (with query) and returns each
// operation's totals, percentiles left out.
func usageTotals(t *testing.T, s *server, token, query string) (int, map[string]errand.UsageCounts) {
	t.Helper()
	code, _, b := s.call("GET", "/v1/usage"+query, "", token)
	if code != 200 {
		return code, nil
	}
	var rep errand.UsageReport
	mustJSON(t, b, &rep)
	out := map[string]errand.UsageCounts{}
	for _, s := range rep.Operations {
		c := s.Total
		c.RunTime, c.QueueWait = errand.Percentiles{Count: c.RunTime.Count}, errand.Percentiles{Count: c.QueueWait.Count}
		out[s.Operation] = c
	}
	return code, out
}

// tenantWork submits jobs as tenants' admins on nodes and has the operator's
// fleet worker lease and finish them all (on the first node): every job
// succeeds but the first of each tenant's in fail, which fails for good.
func tenantWork(t *testing.T, nodes []*server, plan []struct {
	node  int
	token string
	op    string
	n     int
}, fail map[string]bool) {
	t.Helper()
	firsts := map[string]bool{}
	total := 0
	for _, p := range plan {
		for range p.n {
			j := submitAs(t, nodes[p.node], p.token, p.op)
			if fail[p.token] && p.op == "work" && !firsts[p.token] {
				firsts[p.token], firsts[j.ID] = true, true
			}
			total++
		}
	}
	for left := total; left > 0; {
		status, leases := leaseAs(t, nodes[0], bootOps, left, "work", "echo")
		if status != 200 {
			t.Fatalf("the fleet leases: %d", status)
		}
		for _, l := range leases {
			path, body := "/v1/leases/"+l.ID+"/complete", `{"result":{"ok":true}}`
			if firsts[l.Job.ID] {
				path, body = "/v1/leases/"+l.ID+"/fail", `{"error":{"code":"boom"},"retry":false}`
			}
			if code, _, b := nodes[0].call("POST", path, body, bootOps); code != 200 {
				t.Fatalf("%s: %d %s", path, code, b)
			}
		}
		left -= len(leases)
	}
}

// TestE2EUsage: after two tenants' work in the same minutes, /v1/usage
// answers each tenant exactly its own counts per operation, by the minute
// and by the hour; a tenant cannot read another's, usage:read@* can; errand
// usage prints them with a sparkline.
func TestE2EUsage(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, telemetryAuthConfig("usage: { flush_interval: 200ms }\n"), true)
	tenantWork(t, []*server{s}, []struct {
		node  int
		token string
		op    string
		n     int
	}{{0, bootA, "work", 5}, {0, bootA, "echo", 2}, {0, bootB, "work", 3}}, map[string]bool{bootA: true})
	acme := map[string]errand.UsageCounts{
		"work": {Submitted: 5, Succeeded: 4, Failed: 1, RunTime: errand.Percentiles{Count: 5}, QueueWait: errand.Percentiles{Count: 5}},
		"echo": {Submitted: 2, Succeeded: 2, RunTime: errand.Percentiles{Count: 2}, QueueWait: errand.Percentiles{Count: 2}},
	}
	globex := map[string]errand.UsageCounts{
		"work": {Submitted: 3, Succeeded: 3, RunTime: errand.Percentiles{Count: 3}, QueueWait: errand.Percentiles{Count: 3}},
	}
	for _, c := range []struct {
		who, token, query string
		want              map[string]errand.UsageCounts
	}{
		{"acme by the minute", bootA, "", acme},
		{"acme by the hour", bootA, "?step=hour", acme},
		{"acme's work", bootA, "?operation=work", map[string]errand.UsageCounts{"work": acme["work"]}},
		{"globex", bootB, "", globex},
		{"the operator, globex's", bootOps, "?tenant=globex", globex},
		{"the operator's own tenant", bootOps, "", map[string]errand.UsageCounts{}},
	} {
		code, got := usageTotals(t, s, c.token, c.query)
		if code != 200 || !maps.Equal(got, c.want) {
			t.Errorf("%s: %d %+v, want %+v", c.who, code, got, c.want)
		}
	}
	if code, _ := usageTotals(t, s, bootA, "?tenant=globex"); code != 403 {
		t.Errorf("acme's admin reads globex's usage: %d, want 403", code)
	}
	if code, _ := usageTotals(t, s, "", ""); code != 401 {
		t.Errorf("anonymous usage: %d, want 401", code)
	}
	out := cli(t, "", "usage", "--server", s.URL, "--token", bootA)
	for _, want := range []string{`(?m)^work\s+5\s+4\s+1\s+0\s`, `(?m)^echo\s+2\s+2\s+0\s+0\s`, `\|[ ▁▂▃▄▅▆▇█]*[▁▂▃▄▅▆▇█][ ▁▂▃▄▅▆▇█]*\|`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("errand usage printed:\n%s\nwant a line matching %s", out, want)
		}
	}
}

// TestE2EUsageTwoNodes: two nodes on one PostgreSQL take the submits and
// the work of two tenants; each node's /v1/usage answers the same totals,
// the sum of both nodes' counts.
func TestE2EUsageTwoNodes(t *testing.T) {
	t.Parallel()
	store := "ERRAND_STORE=" + pgURL(t)
	cfg := telemetryAuthConfig("usage: { flush_interval: 200ms }\n")
	nodes := []*server{startServerEnv(t, cfg, true, store), startServerEnv(t, cfg, true, store)}
	tenantWork(t, nodes, []struct {
		node  int
		token string
		op    string
		n     int
	}{{0, bootA, "work", 3}, {1, bootA, "work", 2}, {1, bootA, "echo", 1}, {1, bootB, "work", 4}, {0, bootB, "echo", 2}},
		map[string]bool{bootB: true})
	want := map[string]map[string]errand.UsageCounts{
		bootA: {"work": {Submitted: 5, Succeeded: 5, RunTime: errand.Percentiles{Count: 5}, QueueWait: errand.Percentiles{Count: 5}},
			"echo": {Submitted: 1, Succeeded: 1, RunTime: errand.Percentiles{Count: 1}, QueueWait: errand.Percentiles{Count: 1}}},
		bootB: {"work": {Submitted: 4, Succeeded: 3, Failed: 1, RunTime: errand.Percentiles{Count: 4}, QueueWait: errand.Percentiles{Count: 4}},
			"echo": {Submitted: 2, Succeeded: 2, RunTime: errand.Percentiles{Count: 2}, QueueWait: errand.Percentiles{Count: 2}}},
	}
	for i, s := range nodes {
		for token, w := range want {
			var got map[string]errand.UsageCounts
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				_, got = usageTotals(t, s, token, "?step=hour")
				if maps.Equal(got, w) || time.Now().After(deadline) {
					break
				}
			}
			if !maps.Equal(got, w) {
				t.Errorf("node %d, tenant of %s: %+v, want %+v", i, token[:20], got, w)
			}
		}
	}
}
