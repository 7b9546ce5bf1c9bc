package telemetry

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/lifecycle"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracingConfig says where spans go. The zero value traces nothing (and
// still carries the trace context requests bring to jobs, workers and
// webhooks).
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP collector, such as http://collector:4318;
	// spans go to its /v1/traces unless the URL has a path. "" (the default)
	// sends nothing.
	Endpoint string
	// Headers are sent with every export (an API key, say).
	Headers map[string]string
	// SampleRatio is the share of new traces recorded, 0 to 1; a request
	// that arrives with a traceparent keeps its caller's decision. Defaults
	// to 1 (every trace).
	SampleRatio *float64
	// ServiceName names errand in the traces. Defaults to "errand".
	ServiceName string
	// Version is errand's version (service.version).
	Version string
	// Instance names this node (service.instance.id). Defaults to a random id.
	Instance string
	// BatchTimeout is the longest a finished span waits to be exported.
	// Defaults to 1 second.
	BatchTimeout time.Duration
	// QueueSize is how many finished spans may wait to be exported; more
	// are dropped. Defaults to 16,384.
	QueueSize int
	// Log hears export failures. Defaults to slog.Default().
	Log *slog.Logger
}

// Tracing is errand's tracer: OTLP/HTTP export when an endpoint is set, a
// no-op otherwise. It is a lifecycle.Service (Stop sends what is left) and a
// storage.Observer: the spans of a job's leases, attempts and completion are
// made from the commits that record them, on whichever node commits them.
type Tracing struct {
	cfg      TracingConfig
	sdk      *sdktrace.TracerProvider // nil: tracing is off
	provider trace.TracerProvider
	tracer   trace.Tracer
	spans    chan []jobSpan
	loop     lifecycle.Loop
}

// NewTracing makes the tracer the configuration describes.
func NewTracing(cfg *TracingConfig) (*Tracing, error) {
	c := TracingConfig{}
	if cfg != nil {
		c = *cfg
	}
	c.ServiceName = cmp.Or(c.ServiceName, "errand")
	c.BatchTimeout = cmp.Or(c.BatchTimeout, time.Second)
	c.QueueSize = cmp.Or(c.QueueSize, 16384)
	c.Log = cmp.Or(c.Log, slog.Default())
	if c.Instance == "" {
		var b [6]byte
		binary.LittleEndian.PutUint32(b[:], rand.Uint32())
		binary.LittleEndian.PutUint16(b[4:], uint16(rand.Uint32()))
		c.Instance = hex.EncodeToString(b[:])
	}
	ratio := 1.0
	if c.SampleRatio != nil {
		ratio = *c.SampleRatio
	}
	if ratio < 0 || ratio > 1 {
		return nil, fmt.Errorf("tracing config: sample ratio %g is not between 0 and 1", ratio)
	}
	t := &Tracing{cfg: c, provider: noop.NewTracerProvider()}
	if c.Endpoint == "" {
		t.tracer = t.provider.Tracer(instrumentation)
		return t, nil
	}
	exp, err := newExporter(&c)
	if err != nil {
		return nil, err
	}
	res := resource.NewSchemaless(attribute.String("service.name", c.ServiceName),
		attribute.String("service.version", cmp.Or(c.Version, "dev")), attribute.String("service.instance.id", c.Instance))
	t.sdk = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(c.BatchTimeout), sdktrace.WithMaxQueueSize(c.QueueSize),
			sdktrace.WithMaxExportBatchSize(min(2048, c.QueueSize))),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(res), sdktrace.WithIDGenerator(idGenerator{}))
	t.provider, t.tracer = t.sdk, t.sdk.Tracer(instrumentation)
	t.spans = make(chan []jobSpan, 4096)
	return t, nil
}

// instrumentation names errand's tracer.
const instrumentation = "github.com/errandhq/errand"

// newExporter makes the OTLP/HTTP exporter for the endpoint.
func newExporter(c *TracingConfig) (sdktrace.SpanExporter, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracing: endpoint %q is not an http(s) URL", c.Endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String())}
	if len(c.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(c.Headers))
	}
	// New makes no connection: a collector that is down costs failed exports, not a failed start.
	return otlptracehttp.New(context.Background(), opts...)
}

// Enabled reports whether spans are recorded and sent.
func (t *Tracing) Enabled() bool { return t.sdk != nil }

// Provider is the tracer provider (a no-op one when tracing is off): errand's
// own runners' workers make their spans with it.
func (t *Tracing) Provider() trace.TracerProvider { return t.provider }

// Tracer is errand's tracer.
func (t *Tracing) Tracer() trace.Tracer { return t.tracer }

// Start runs the goroutine that makes the spans of committed job events.
func (t *Tracing) Start(ctx context.Context) error {
	if t.sdk != nil {
		t.loop.Go(ctx, t.emit)
	}
	return nil
}

// Stop makes the spans still waiting, then sends every span left (until ctx
// ends).
func (t *Tracing) Stop(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	err := t.loop.Halt(ctx)
	t.drain()
	return errors.Join(err, t.sdk.Shutdown(ctx))
}

// idGenerator is the SDK's random ids, except for a span whose id is known
// in advance (an attempt's: see attemptSpanID), which its context carries.
type idGenerator struct{}

type spanIDKey struct{}

// withSpanID makes the next span started with ctx take id.
func withSpanID(ctx context.Context, id trace.SpanID) context.Context {
	return context.WithValue(ctx, spanIDKey{}, id)
}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.NativeEndian.PutUint64(tid[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid, idGenerator{}.NewSpanID(ctx, tid)
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if id, ok := ctx.Value(spanIDKey{}).(trace.SpanID); ok && id.IsValid() {
		return id
	}
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.NativeEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}

// attemptSpanID is the span id of a job's attempt: the same on every node
// (derived from the trace, the job and the attempt's number), so that the
// lease answer can name the span its worker's spans hang under before the
// attempt ends, and the node that records its end (any of them) makes that
// span.
func attemptSpanID(tid trace.TraceID, jobID string, attempt int) trace.SpanID {
	h := sha256.New()
	h.Write(tid[:])
	h.Write([]byte(jobID))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(attempt))
	h.Write(n[:])
	var sid trace.SpanID
	copy(sid[:], h.Sum(nil))
	if !sid.IsValid() {
		sid[7] = 1
	}
	return sid
}

// attemptContext is the span context of j's attempt number attempt, in the
// trace of j's submitter; ok is false when j carries no trace context.
func attemptContext(j *errand.Job, attempt int) (trace.SpanContext, bool) {
	parent, ok := ParseTraceParent(j.TraceParent)
	if !ok {
		return trace.SpanContext{}, false
	}
	return parent.WithSpanID(attemptSpanID(parent.TraceID(), j.ID, attempt)).WithRemote(true), true
}

// LeaseParent is the trace context a lease of j hands its worker: the span
// of the attempt just started while errand traces (so the worker's spans hang
// under it), else the submitter's context as it came.
func (t *Tracing) LeaseParent(j *errand.Job) string {
	if t.sdk == nil || j.TraceParent == "" {
		return j.TraceParent
	}
	sc, ok := attemptContext(j, j.Attempt)
	if !ok {
		return j.TraceParent
	}
	return FormatTraceParent(sc)
}
