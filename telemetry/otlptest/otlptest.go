// Package otlptest is an OTLP/HTTP trace receiver for tests and benchmarks:
// it listens on loopback, decodes what exporters send (protobuf, as
// go.opentelemetry.io/proto/otlp defines it) and keeps the spans.
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one span received, flattened.
type Span struct {
	TraceID, SpanID, ParentID string // hex; ParentID "" for a root
	Name                      string
	Kind                      string // SPAN_KIND_SERVER, …
	Start, End                time.Time
	Attrs                     map[string]string // values as text
	StatusCode                string            // STATUS_CODE_ERROR, …
	Service                   string            // the resource's service.name
}

// Receiver collects the spans exported to it.
type Receiver struct {
	// URL is the endpoint to configure (tracing.endpoint); spans go to its /v1/traces.
	URL      string
	srv      *httptest.Server
	decode   bool
	mu       sync.Mutex
	spans    []Span
	requests atomic.Int64
	bytes    atomic.Int64
}

// New starts a receiver. With decode false it only reads and counts what
// arrives (a benchmark's receiver should cost little beside errand).
func New(decode bool) *Receiver {
	r := &Receiver{decode: decode}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	return r
}

// Close stops the receiver.
func (r *Receiver) Close() { r.srv.Close() }

// Requests and Bytes count the exports received and their (compressed) size.
func (r *Receiver) Requests() int64 { return r.requests.Load() }
func (r *Receiver) Bytes() int64    { return r.bytes.Load() }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "POST /v1/traces only", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.requests.Add(1)
	r.bytes.Add(int64(len(body)))
	if r.decode {
		if err := r.keep(body, req.Header.Get("Content-Encoding") == "gzip"); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// keep decodes one export and adds its spans.
func (r *Receiver) keep(body []byte, gzipped bool) error {
	if gzipped {
		zr, err := gzip.NewReader(strings.NewReader(string(body)))
		if err != nil {
			return err
		}
		if body, err = io.ReadAll(zr); err != nil {
			return err
		}
	}
	var msg coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
		return fmt.Errorf("decode export: %w", err)
	}
	var got []Span
	for _, rs := range msg.ResourceSpans {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				got = append(got, Span{TraceID: hex.EncodeToString(s.TraceId), SpanID: hex.EncodeToString(s.SpanId),
					ParentID: hex.EncodeToString(s.ParentSpanId), Name: s.Name, Kind: s.Kind.String(),
					Start: time.Unix(0, int64(s.StartTimeUnixNano)), End: time.Unix(0, int64(s.EndTimeUnixNano)),
					Attrs: attrs(s.Attributes), StatusCode: s.GetStatus().GetCode().String(), Service: service})
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	return nil
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			out[kv.Key] = v.GetStringValue()
		default:
			out[kv.Key] = strings.TrimSpace(fmt.Sprint(v.GetIntValue()))
			if _, ok := v.Value.(*commonpb.AnyValue_BoolValue); ok {
				out[kv.Key] = fmt.Sprint(v.GetBoolValue())
			}
		}
	}
	return out
}

// Spans returns the spans received so far, by start time.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	out := append([]Span(nil), r.spans...)
	r.mu.Unlock()
	sort.SliceStable(out, func(i, k int) bool { return out[i].Start.Before(out[k].Start) })
	return out
}

// Trace returns the spans of one trace, by start time.
func (r *Receiver) Trace(traceID string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// Await waits up to d until ok holds for the spans received, and returns them.
func (r *Receiver) Await(d time.Duration, ok func([]Span) bool) ([]Span, bool) {
	deadline := time.Now().Add(d)
	for {
		spans := r.Spans()
		if ok(spans) {
			return spans, true
		}
		if time.Now().After(deadline) {
			return spans, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
