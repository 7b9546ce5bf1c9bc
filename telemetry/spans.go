package telemetry

import (
	"context"
	"net/url"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// A job's trace, beside the requests' own spans (the submit, the lease and
// completion requests, each with its store commit):
//
//	POST /v1/jobs                       (server; the job keeps its context)
//	├── store commit
//	├── attempt <op>                    (started → ended; its id is known from the lease on)
//	│   ├── job.started <op>            (the lease's commit)
//	│   ├── process <op>                (the worker's, continued from the lease's traceparent)
//	│   └── job.succeeded <op>          (the completion's commit; or job.failed, job.retrying, job.canceled)
//	└── webhook POST                    (each delivery attempt; its traceparent is sent)
//
// The attempt and event spans are made from the commits that record them,
// by the node that commits them, on a goroutine of their own (a commit never
// waits for a span).

// jobSpan is what a committed job event's spans need, copied from the event
// and its job on the writer's goroutine.
type jobSpan struct {
	typ, op, jobID, worker, code string
	parent                       trace.SpanContext
	attempt                      int
	at, started, heard           time.Time
	// inAttempt: the event happened in an attempt (its lease, its end);
	// ended: it ends the attempt, whose span is made with it.
	inAttempt, ended bool
}

// Committed hands the spans of this node's committed job events to the
// goroutine that makes them; when it lags far behind, they are dropped.
func (t *Tracing) Committed(c *storage.CommitStats) {
	if t.sdk == nil {
		return
	}
	var batch []jobSpan
	heard := time.Now()
	for _, e := range c.Events {
		if s, ok := spanOf(e, heard); ok {
			batch = append(batch, s)
		}
	}
	if len(batch) == 0 {
		return
	}
	select {
	case t.spans <- batch:
	default:
	}
}

// Failed does nothing: a failed transaction recorded nothing to trace.
func (t *Tracing) Failed(error) {}

// spanOf reads what the spans of e need; ok is false for an event that has
// none (not a job's, of a job without a trace, or job.created and
// job.progress, which the request's own spans cover).
func spanOf(e *errand.Event, heard time.Time) (jobSpan, bool) {
	j := e.Job
	if j == nil || j.TraceParent == "" || e.Type == errand.EventJobCreated || e.Type == errand.EventJobProgress {
		return jobSpan{}, false
	}
	parent, ok := ParseTraceParent(j.TraceParent)
	if !ok {
		return jobSpan{}, false
	}
	s := jobSpan{typ: e.Type, op: j.Operation, jobID: j.ID, worker: j.Worker, parent: parent, attempt: j.Attempt,
		at: e.Time, heard: heard}
	if j.StartedAt != nil {
		s.started = *j.StartedAt
	}
	if j.Error != nil {
		s.code = j.Error.Code
	}
	switch e.Type {
	case errand.EventJobStarted:
		s.inAttempt = true
	case errand.EventJobSucceeded, errand.EventJobFailed:
		s.inAttempt, s.ended = true, true
	case errand.EventJobCanceled:
		s.inAttempt = j.CancelRequested // it was running: its attempt ends
		s.ended = s.inAttempt
	case errand.EventJobRetrying:
		switch RetryReason(j) {
		case "released":
			s.attempt++ // Release counts the attempt back (and forgets its start)
			s.inAttempt = true
		case "manual":
		default:
			s.inAttempt, s.ended = true, true
		}
	}
	return s, true
}

// emit makes the spans handed over until ctx ends.
func (t *Tracing) emit(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case batch := <-t.spans:
			for i := range batch {
				t.makeSpans(&batch[i])
			}
		}
	}
}

// drain makes the spans still waiting (at Stop).
func (t *Tracing) drain() {
	for {
		select {
		case batch := <-t.spans:
			for i := range batch {
				t.makeSpans(&batch[i])
			}
		default:
			return
		}
	}
}

// makeSpans makes one event's span, under its attempt's when the event
// belongs to one, and the attempt's span when the event ends it.
func (t *Tracing) makeSpans(s *jobSpan) {
	root := trace.ContextWithRemoteSpanContext(context.Background(), s.parent)
	attempt := s.parent.WithSpanID(attemptSpanID(s.parent.TraceID(), s.jobID, s.attempt))
	parent := root
	if s.inAttempt {
		parent = trace.ContextWithRemoteSpanContext(context.Background(), attempt)
	}
	attrs := []attribute.KeyValue{attribute.String("errand.job.id", s.jobID), attribute.String("errand.operation", s.op),
		attribute.Int("errand.job.attempt", s.attempt)}
	_, ev := t.tracer.Start(parent, s.typ+" "+s.op, trace.WithTimestamp(s.at), trace.WithAttributes(attrs...))
	if s.code != "" && s.typ != errand.EventJobSucceeded {
		ev.SetAttributes(attribute.String("errand.error.code", s.code))
	}
	ev.End(trace.WithTimestamp(s.heard))
	if !s.ended || s.started.IsZero() {
		return
	}
	actx := withSpanID(root, attempt.SpanID())
	_, sp := t.tracer.Start(actx, "attempt "+s.op, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(s.started),
		trace.WithAttributes(append(attrs, attribute.String("errand.worker", s.worker),
			attribute.String("errand.outcome", s.typ))...))
	if s.typ != errand.EventJobSucceeded {
		sp.SetStatus(codes.Error, s.code)
	}
	sp.End(trace.WithTimestamp(s.at))
}

// Attempt starts the client span of one delivery attempt of x to target,
// under the trace x keeps: it returns the traceparent to send (the span's,
// or x's own when x has none to continue) and the function that ends the
// span with the answer's status (0 for none) and error ("" for none). It is
// the webhook deliverer's Tracer.
func (t *Tracing) Attempt(ctx context.Context, x *errand.Delivery, target string) (string, func(status int, err string)) {
	if t.sdk == nil || x.TraceParent == "" {
		return x.TraceParent, func(int, string) {}
	}
	host := ""
	if u, err := url.Parse(target); err == nil {
		host = u.Host
	}
	_, span := t.tracer.Start(ContextOf(ctx, x.TraceParent), "webhook POST", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", "POST"), attribute.String("server.address", host),
			attribute.String("errand.delivery.id", x.ID), attribute.Int("errand.delivery.attempt", x.AttemptCount+1),
			attribute.String("errand.event.type", x.EventType)))
	return FormatTraceParent(span.SpanContext()), func(status int, err string) {
		if status > 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", status))
		}
		if err != "" {
			span.SetStatus(codes.Error, err)
		}
		span.End()
	}
}

// AttemptTraceParent is j's attempt's trace context as a string, for tests
// and tools that look a trace up by its parts.
func AttemptTraceParent(j *errand.Job, attempt int) string {
	sc, ok := attemptContext(j, attempt)
	if !ok {
		return ""
	}
	return FormatTraceParent(sc)
}
