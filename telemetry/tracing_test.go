package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/telemetry/otlptest"
)

func newTracing(t *testing.T, endpoint string) *Tracing {
	t.Helper()
	tr, err := NewTracing(&TracingConfig{Endpoint: endpoint, BatchTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Stop(context.Background()) })
	return tr
}

// TestJobSpansFromCommits: the commits of a job's lease and completion make
// its attempt span (with the id the lease handed the worker, under the
// submitter's span) and the lease's and completion's spans under it.
func TestJobSpansFromCommits(t *testing.T) {
	rcv := otlptest.New(true)
	defer rcv.Close()
	tr := newTracing(t, rcv.URL)
	evs := jobLife("job_1", "report", "a", errand.EventJobSucceeded, "")
	for _, e := range evs {
		e.Job.TraceParent = sampleTP
		e.Job.Worker = "w1"
	}
	lease := tr.LeaseParent(evs[1].Job)
	tr.Committed(&storage.CommitStats{Events: evs})
	if err := tr.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans, ok := rcv.Await(5*time.Second, func(s []otlptest.Span) bool { return len(s) >= 3 })
	if !ok {
		t.Fatalf("received %d spans, want 3: %+v", len(spans), spans)
	}
	byName := map[string]otlptest.Span{}
	for _, s := range spans {
		byName[s.Name] = s
		if s.TraceID != "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("span %s in trace %s, want the submitter's", s.Name, s.TraceID)
		}
	}
	attempt := byName["attempt report"]
	if attempt.ParentID != "b7ad6b7169203331" || attempt.SpanID != spanID(lease) || attempt.Attrs["errand.worker"] != "w1" ||
		!attempt.Start.Equal(t0.Add(time.Second)) || !attempt.End.Equal(t0.Add(3*time.Second)) {
		t.Errorf("attempt span = %+v, want under the submitter's span, with the lease's span id %s, from 1 s to 3 s", attempt, spanID(lease))
	}
	for _, name := range []string{"job.started report", "job.succeeded report"} {
		if s := byName[name]; s.ParentID != attempt.SpanID {
			t.Errorf("%s span's parent = %q, want the attempt %q", name, s.ParentID, attempt.SpanID)
		}
	}
	if _, ok := byName["job.created report"]; ok {
		t.Error("job.created made a span: the submit request's spans cover it")
	}
}

func spanID(tp string) string {
	sc, _ := ParseTraceParent(tp)
	return sc.SpanID().String()
}

// TestTracingOff: without an endpoint, requests still join the caller's
// trace (jobs and leases carry it on unchanged) and nothing is recorded.
func TestTracingOff(t *testing.T) {
	tr := newTracing(t, "")
	var seen string
	h := tr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = TraceParent(r.Context()) }))
	req := httptest.NewRequest("POST", "/v1/jobs", nil)
	req.Header.Set("traceparent", sampleTP)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if seen != sampleTP {
		t.Errorf("the handler's context carries %q, want the caller's %q", seen, sampleTP)
	}
	if got := tr.LeaseParent(&errand.Job{ID: "job_1", Attempt: 1, TraceParent: sampleTP}); got != sampleTP {
		t.Errorf("LeaseParent with tracing off = %q, want the job's own", got)
	}
	if tp, end := tr.Attempt(context.Background(), &errand.Delivery{TraceParent: sampleTP}, "http://x"); tp != sampleTP {
		t.Errorf("a delivery's traceparent with tracing off = %q, want the stored one", tp)
	} else {
		end(200, "")
	}
}

// TestServerSpans: a request's span joins the caller's trace, is named by
// its route once routed, and a store commit under it gets a span of its own.
func TestServerSpans(t *testing.T) {
	rcv := otlptest.New(true)
	defer rcv.Close()
	tr := newTracing(t, rcv.URL)
	store := tr.Store(teststore.Open(t))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/jobs/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		if err := store.WithTx(r.Context(), func(storage.Tx) error { return nil }); err != nil {
			t.Error(err)
		}
		w.WriteHeader(http.StatusAccepted)
	})
	req := httptest.NewRequest("POST", "/v1/jobs/job_42/cancel", nil)
	req.Header.Set("traceparent", sampleTP)
	tr.Handler(mux).ServeHTTP(httptest.NewRecorder(), req)
	tr.Handler(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
	spans, ok := rcv.Await(5*time.Second, func(s []otlptest.Span) bool { return len(s) >= 2 })
	if !ok {
		t.Fatalf("received %d spans, want 2", len(spans))
	}
	var server, commit otlptest.Span
	for _, s := range spans {
		switch s.Name {
		case "POST /v1/jobs/{id}/cancel":
			server = s
		case "store commit":
			commit = s
		default:
			t.Errorf("unexpected span %q", s.Name)
		}
	}
	if server.ParentID != "b7ad6b7169203331" || server.Kind != "SPAN_KIND_SERVER" || server.Attrs["http.response.status_code"] != "202" ||
		server.Attrs["http.route"] != "/v1/jobs/{id}/cancel" {
		t.Errorf("server span = %+v, want the caller's child, routed, answered 202", server)
	}
	if commit.ParentID != server.SpanID || commit.TraceID != server.TraceID {
		t.Errorf("commit span = %+v, want the server span's child", commit)
	}
}
