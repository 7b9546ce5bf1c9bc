package telemetry

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// FormatTraceParent writes sc as a W3C traceparent header value
// ("00-<trace id>-<span id>-<flags>"), or "" for an invalid one.
func FormatTraceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	var b [55]byte
	copy(b[:3], "00-")
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags())})
	return string(b[:])
}

// ParseTraceParent reads a W3C traceparent header value (version 00, or a
// later version's first four fields); ok is false for anything else.
func ParseTraceParent(s string) (trace.SpanContext, bool) {
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || (len(s) > 55 && (s[:2] == "00" || s[55] != '-')) {
		return trace.SpanContext{}, false
	}
	var ver [1]byte
	var tid trace.TraceID
	var sid trace.SpanID
	var flags [1]byte
	if !lowerHex(s[:55]) || !decode(ver[:], s[:2]) || ver[0] == 0xff || !decode(tid[:], s[3:35]) ||
		!decode(sid[:], s[36:52]) || !decode(flags[:], s[53:55]) {
		return trace.SpanContext{}, false
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid,
		TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled, Remote: true})
	return sc, sc.IsValid()
}

func decode(dst []byte, s string) bool {
	n, err := hex.Decode(dst, []byte(s))
	return err == nil && n == len(dst)
}

// lowerHex reports whether s's fields are lower-case hex, as W3C requires.
func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '-' && !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// TraceParent is the trace context of ctx's span (the request's, say) as a
// traceparent, or "" when ctx has none: what a job submitted (or an event
// published) under ctx keeps.
func TraceParent(ctx context.Context) string {
	return FormatTraceParent(trace.SpanContextFromContext(ctx))
}

// ContextOf returns ctx carrying the stored trace context tp as its remote
// parent (ctx itself when tp is not one): a span started with it continues
// that trace.
func ContextOf(ctx context.Context, tp string) context.Context {
	sc, ok := ParseTraceParent(tp)
	if !ok {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// Handler joins each request to the trace its traceparent header names and,
// while errand traces, records a server span for it, named by its route
// pattern once routed (httpapi hands the pattern back on the request, as
// ServeMux does). Health checks and scrapes get no span.
func (t *Tracing) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if tp := r.Header.Get("Traceparent"); tp != "" {
			ctx = ContextOf(ctx, tp)
		}
		if t.sdk == nil || untraced[r.URL.Path] {
			if ctx != r.Context() {
				r = r.WithContext(ctx)
			}
			next.ServeHTTP(w, r)
			return
		}
		ctx, span := t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method),
				attribute.String("url.path", errand.RedactLeases(r.URL.Path))))
		rec := &statusWriter{ResponseWriter: w}
		r = r.WithContext(ctx)
		next.ServeHTTP(rec, r)
		if name := spanName(r.Method, r.Pattern); name != r.Method {
			span.SetName(name)
			span.SetAttributes(attribute.String("http.route", name[strings.IndexByte(name, ' ')+1:]))
		}
		span.SetAttributes(attribute.Int("http.response.status_code", rec.status))
		if rec.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(rec.status))
		}
		span.End()
	})
}

// untraced are the paths that get no server span.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// spanName is "METHOD /route" for a routed request, else the method.
func spanName(method, pattern string) string {
	switch {
	case strings.Contains(pattern, " "):
		return pattern
	case pattern != "" && pattern != "/":
		return method + " " + pattern
	}
	return method
}

// statusWriter remembers the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, hijack, deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Store returns s with a span around each WithTx called under a recording
// span (a request's): "store commit", the wait for the writer and the group
// commit it joined. Without tracing it returns s.
func (t *Tracing) Store(s storage.Store) storage.Store {
	if t.sdk == nil {
		return s
	}
	return tracedStore{Store: s, tracer: t.tracer}
}

type tracedStore struct {
	storage.Store
	tracer trace.Tracer
}

func (s tracedStore) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return s.Store.WithTx(ctx, fn)
	}
	ctx, span := s.tracer.Start(ctx, "store commit", trace.WithSpanKind(trace.SpanKindInternal))
	err := s.Store.WithTx(ctx, fn)
	if code := errand.ErrorCode(err); code == errand.EINTERNAL || code == errand.EUNAVAILABLE || code == errand.ESTORAGEFULL {
		span.SetStatus(codes.Error, code)
	}
	span.End()
	return err
}

// LogHandler adds trace_id and span_id to every record logged with a context
// that carries a span (a request's), so logs and traces meet.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(as)}
}
func (h logHandler) WithGroup(name string) slog.Handler { return logHandler{h.Handler.WithGroup(name)} }
