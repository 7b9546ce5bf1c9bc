package telemetry

import (
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// jobAt is a job of op in tenant, created at t0, as the job event of typ
// would carry it (started at t0+1s when it ran).
func jobAt(id, op, tenant string, attempt int) *errand.Job {
	started := t0.Add(time.Second)
	return &errand.Job{ID: id, Operation: op, Tenant: tenant, Attempt: attempt, CreatedAt: t0, RunAt: t0, StartedAt: &started}
}

func jobEvent(typ string, j *errand.Job, at time.Time) *errand.Event {
	return &errand.Event{Stream: j.ID, Tenant: j.Tenant, Type: typ, Time: at, Job: j}
}

// jobLife is a job's events from its submit to its end: created,
// started, then ended with typ (and the error code on the job).
func jobLife(id, op, tenant, end, code string) []*errand.Event {
	created := *jobAt(id, op, tenant, 0)
	created.StartedAt = nil
	started := *jobAt(id, op, tenant, 1)
	ended := *jobAt(id, op, tenant, 1)
	if code != "" {
		ended.Error = &errand.Problem{Code: code}
	}
	if end == errand.EventJobRetrying {
		ended.RunAt = t0.Add(time.Minute)
	}
	return []*errand.Event{jobEvent(errand.EventJobCreated, &created, t0), jobEvent(errand.EventJobStarted, &started, t0.Add(time.Second)),
		jobEvent(end, &ended, t0.Add(3*time.Second))}
}

func TestMetricsCountCommittedJobEvents(t *testing.T) {
	m, err := NewMetrics(&MetricsConfig{Operations: []string{"report", "email"}, ChannelOf: func(name string) string {
		if strings.HasPrefix(name, "orders.") {
			return "orders.*"
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	var evs []*errand.Event
	evs = append(evs, jobLife("job_1", "report", "a", errand.EventJobSucceeded, "")...)
	evs = append(evs, jobLife("job_2", "report", "a", errand.EventJobSucceeded, "")...)
	evs = append(evs, jobLife("job_3", "report", "b", errand.EventJobFailed, "worker_error")...)
	evs = append(evs, jobLife("job_4", "report", "b", errand.EventJobRetrying, errand.ECODELEASEEXPIRED)...)
	evs = append(evs, jobLife("job_5", "gone-op", "b", errand.EventJobSucceeded, "")...)
	evs = append(evs, &errand.Event{Stream: "orders.eu", Tenant: "a", Type: "order.created", Time: t0},
		&errand.Event{Stream: "misc", Tenant: "a", Type: "x", Time: t0},
		&errand.Event{Stream: errand.StreamWebhooks, Tenant: "a", Type: errand.EventEndpointDisabled, Time: t0})
	m.Committed(&storage.CommitStats{Duration: 3 * time.Millisecond, Calls: 7, Events: evs[:6]})
	m.Committed(&storage.CommitStats{Duration: time.Millisecond, Calls: 1, Events: evs[6:]})
	m.Failed(errand.Errorf(errand.EUNAVAILABLE, "down"))
	m.Failed(errors.New("boom"))

	checks := []struct {
		what string
		got  float64
		want float64
	}{
		{"submitted report", testutil.ToFloat64(m.jobs.submitted.WithLabelValues("report")), 4},
		{"submitted other", testutil.ToFloat64(m.jobs.submitted.WithLabelValues("other")), 1},
		{"submitted email", testutil.ToFloat64(m.jobs.submitted.WithLabelValues("email")), 0},
		{"started report", testutil.ToFloat64(m.jobs.started.WithLabelValues("report")), 4},
		{"succeeded report", testutil.ToFloat64(m.jobs.succeeded.WithLabelValues("report")), 2},
		{"failed report", testutil.ToFloat64(m.jobs.failed.WithLabelValues("report")), 1},
		{"retried report lease_expired", testutil.ToFloat64(m.jobs.retried.WithLabelValues("report", "lease_expired")), 1},
		{"lease expirations report", testutil.ToFloat64(m.jobs.expired.WithLabelValues("report")), 1},
		{"events job", testutil.ToFloat64(m.events["job"]), 15},
		{"events channel", testutil.ToFloat64(m.events["channel"]), 2},
		{"events webhooks", testutil.ToFloat64(m.events["webhooks"]), 1},
		{"channel orders.*", testutil.ToFloat64(m.channels.WithLabelValues("orders.*")), 1},
		{"channel other", testutil.ToFloat64(m.channels.WithLabelValues("other")), 1},
		{"store errors unavailable", testutil.ToFloat64(m.store.errors.WithLabelValues("unavailable")), 1},
		{"store errors internal", testutil.ToFloat64(m.store.errors.WithLabelValues("internal")), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if n := histogramCount(t, m, "errand_job_run_duration_seconds", "report"); n != 4 {
		t.Errorf("run time observations of report = %d, want 4 (three ended attempts and a lease expiry)", n)
	}
	if n := histogramCount(t, m, "errand_job_queue_wait_seconds", "report"); n != 4 {
		t.Errorf("queue wait observations of report = %d, want 4", n)
	}
	if n := histogramCount(t, m, "errand_job_duration_seconds", "report"); n != 3 {
		t.Errorf("end-to-end observations of report = %d, want 3 (the finished jobs)", n)
	}
	if n := histogramCount(t, m, "errand_store_commit_calls", ""); n != 2 {
		t.Errorf("commit observations = %d, want 2", n)
	}
}

// histogramCount is the sample count of a histogram's series of operation
// ("" for a histogram without labels).
func histogramCount(t *testing.T, m *Metrics, name, op string) uint64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.Metric {
			match := op == ""
			for _, l := range s.Label {
				if l.GetName() == "operation" && l.GetValue() == op {
					match = true
				}
			}
			if match {
				return s.GetHistogram().GetSampleCount()
			}
		}
	}
	t.Fatalf("no %s{operation=%q}", name, op)
	return 0
}

// TestMetricsTenantLabels: with tenant labels, the job series carry the tenant.
func TestMetricsTenantLabels(t *testing.T) {
	m, _ := NewMetrics(&MetricsConfig{Operations: []string{"report"}, TenantLabels: true})
	var evs []*errand.Event
	evs = append(evs, jobLife("job_1", "report", "a", errand.EventJobSucceeded, "")...)
	evs = append(evs, jobLife("job_2", "report", "b", errand.EventJobSucceeded, "")...)
	evs = append(evs, jobLife("job_3", "report", "b", errand.EventJobSucceeded, "")...)
	m.Committed(&storage.CommitStats{Calls: 1, Events: evs})
	if a, b := testutil.ToFloat64(m.jobs.succeeded.WithLabelValues("report", "a")), testutil.ToFloat64(m.jobs.succeeded.WithLabelValues("report", "b")); a != 1 || b != 2 {
		t.Errorf("succeeded{tenant=a} = %v, {tenant=b} = %v; want 1, 2", a, b)
	}
}

// TestMetricsLint: every metric passes the Prometheus client's linter (the
// checks promtool check metrics makes), with values in every family.
func TestMetricsLint(t *testing.T) {
	m, _ := NewMetrics(&MetricsConfig{Operations: []string{"report"}, Queue: func() ([]storage.QueueStat, error) { return nil, nil },
		Store: func() storage.Stats {
			return storage.Stats{Pool: &storage.PoolStats{Max: 4}, Tailer: &storage.TailerStats{}}
		}, Hub: fakeHub{}, Version: "1.2.3"})
	m.Committed(&storage.CommitStats{Calls: 1, Events: jobLife("job_1", "report", "a", errand.EventJobSucceeded, "")})
	m.Request("GET /v1/jobs/{id}", "GET", 200, time.Millisecond, false)
	m.Request("/", "BREW", 404, time.Millisecond, false)
	m.Attempted("a", "succeeded", 10*time.Millisecond)
	m.EndpointDisabled("a", "gone")
	m.WatchBridges(func() []BridgeSample {
		return []BridgeSample{{Bridge: "nats", Route: "orders", Direction: "out", Up: true, Messages: 3, Lag: 2}}
	})
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{`errand_build_info{goversion=`, `version="1.2.3"`, `errand_http_requests_total{code="4xx",method="other",route="/"} 1`,
		`errand_http_requests_total{code="2xx",method="GET",route="/v1/jobs/{id}"} 1`, `errand_store_pool_max_connections 4`,
		`errand_jobs_queued{operation="report"} 0`, `errand_hub_subscriptions 3`,
		`errand_bridge_messages_total{bridge="nats",direction="out",route="orders"} 3`, `errand_bridge_lag_events{bridge="nats",route="orders"} 2`,
		`errand_bridge_up{bridge="nats"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

type fakeHub struct{}

func (fakeHub) Subscribers() int { return 3 }
func (fakeHub) Resets() uint64   { return 1 }

// TestQueueReadingCached: scrapes within the interval reuse one reading of
// the store; the next scrape after it reads again.
func TestQueueReadingCached(t *testing.T) {
	var reads atomic.Int32
	m, _ := NewMetrics(&MetricsConfig{Operations: []string{"report"}, QueueInterval: time.Second,
		Queue: func() ([]storage.QueueStat, error) {
			reads.Add(1)
			return []storage.QueueStat{{Operation: "report", Status: errand.StatusQueued, Count: 7, Oldest: time.Now().Add(-time.Minute)},
				{Operation: "old", Status: errand.StatusRunning, Count: 2}}, nil
		}})
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	for range 5 {
		scrape()
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("5 scrapes in a row read the queue %d times, want once", n)
	}
	time.Sleep(1100 * time.Millisecond)
	body := scrape()
	if n := reads.Load(); n != 2 {
		t.Errorf("a scrape after the interval: %d reads in all, want 2", n)
	}
	for _, want := range []string{`errand_jobs_queued{operation="report"} 7`, `errand_jobs_running{operation="other"} 2`,
		`errand_jobs_running{operation="report"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	line := grep(body, `errand_jobs_oldest_queued_age_seconds{operation="report"}`)
	var age float64
	if _, err := fmt.Sscanf(line, `errand_jobs_oldest_queued_age_seconds{operation="report"} %g`, &age); err != nil || age < 59 || age > 61 {
		t.Errorf("oldest queued age of report is not about 60 s:\n%s", grep(body, "oldest"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
