package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const sampleTP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

func TestParseTraceParent(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{sampleTP, true},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", true},
		{"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future", true}, // a later version's extra fields
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", false},     // version 00 has none
		{"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", false},
		{"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", false}, // upper case
		{"00-00000000000000000000000000000000-b7ad6b7169203331-01", false},
		{"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", false},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01", false},
		{"", false},
		{"00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01", false},
	}
	for _, tt := range tests {
		sc, ok := ParseTraceParent(tt.in)
		if ok != tt.ok {
			t.Errorf("ParseTraceParent(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		// OpenTelemetry's own propagator reads it the same way.
		want := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
			propagation.MapCarrier{"traceparent": tt.in}))
		if !sc.Equal(want) {
			t.Errorf("ParseTraceParent(%q) = %v, want %v", tt.in, sc, want)
		}
	}
	sc, _ := ParseTraceParent(sampleTP)
	if got := FormatTraceParent(sc); got != sampleTP {
		t.Errorf("FormatTraceParent = %q, want %q", got, sampleTP)
	}
	if got := TraceParent(trace.ContextWithRemoteSpanContext(context.Background(), sc)); got != sampleTP {
		t.Errorf("TraceParent(ctx) = %q, want %q", got, sampleTP)
	}
	if got := TraceParent(context.Background()); got != "" {
		t.Errorf("TraceParent of a context without a span = %q, want empty", got)
	}
}

// FuzzParseTraceParent: whatever parses formats back to a value that parses
// to the same context, and agrees with OpenTelemetry's propagator.
func FuzzParseTraceParent(f *testing.F) {
	f.Add(sampleTP)
	f.Add("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-09-xyz")
	f.Fuzz(func(t *testing.T, s string) {
		sc, ok := ParseTraceParent(s)
		if !ok {
			return
		}
		again, ok := ParseTraceParent(FormatTraceParent(sc))
		if !ok || !again.Equal(sc) {
			t.Fatalf("%q: format and parse again = %v, %v; want %v", s, again, ok, sc)
		}
		otel := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
			propagation.MapCarrier{"traceparent": s}))
		if otel.IsValid() && (otel.TraceID() != sc.TraceID() || otel.SpanID() != sc.SpanID() || otel.IsSampled() != sc.IsSampled()) {
			t.Fatalf("%q: parsed %v, OpenTelemetry reads %v", s, sc, otel)
		}
	})
}

// TestLogHandler: a record logged with a context carrying a span has its
// trace and span ids; one without has neither.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("k", "v")
	sc, _ := ParseTraceParent(sampleTP)
	log.InfoContext(trace.ContextWithRemoteSpanContext(context.Background(), sc), "with")
	log.InfoContext(context.Background(), "without")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331"`) ||
		!strings.Contains(lines[0], `"k":"v"`) || strings.Contains(lines[1], "trace_id") {
		t.Errorf("logged:\n%s\nwant trace_id and span_id on the first line only", buf.String())
	}
}
