// Package worker is the Go SDK for errand's pull workers: it leases jobs over
// HTTP, runs a handler for each with N at a time, heartbeats to keep the lease
// and learn of cancels, reports progress, completes in batches, and on stop lets
// running jobs finish (or hands them back) before it returns.
//
//	w, err := worker.New(worker.Config{URL: "http://localhost:8080", Operations: []string{"generate-report"}},
//		func(ctx context.Context, j *worker.Job) (any, error) {
//			j.Progress(ctx, 50, "halfway")
//			return map[string]string{"url": "/reports/1.pdf"}, nil
//		})
//	err = w.Run(ctx) // until ctx ends
package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/client"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Handler runs one job and returns its result (any JSON-encodable value) or an
// error. ctx ends when the job is canceled, its lease is lost or the worker stops
// for good; return promptly then.
type Handler func(ctx context.Context, j *Job) (any, error)

// Config tunes a worker. URL and Operations are required.
type Config struct {
	// URL is the errand server, like http://localhost:8080.
	URL string
	// Token is sent as a bearer token.
	Token string
	// Operations are the operations this worker runs.
	Operations []string
	// Concurrency is how many jobs run at once. Defaults to 1.
	Concurrency int
	// Lease is how long the worker holds a job between heartbeats. Defaults to 60s.
	Lease time.Duration
	// Heartbeat is how often a running job's lease is extended. Defaults to Lease/3.
	Heartbeat time.Duration
	// PollWait is how long one lease request waits for work. Defaults to 30s.
	PollWait time.Duration
	// ShutdownTimeout is how long Run lets running jobs finish after its context
	// ends; jobs still running then are released back to the queue. Defaults to 30s.
	ShutdownTimeout time.Duration
	// Name identifies the worker in job events. Defaults to host-pid.
	Name string
	// HTTPClient sends the requests. Defaults to a keep-alive client.
	HTTPClient *http.Client
	// Logger logs transport errors. Defaults to slog.Default().
	Logger *slog.Logger
	// Transport, when set, replaces HTTP (URL, Token and HTTPClient are then unused).
	Transport Transport
	// TracerProvider makes a span for each job run ("process <operation>"),
	// continuing the trace its lease names (the job's attempt in errand's
	// trace), so the handler's own spans join the submitter's trace.
	// Defaults to OpenTelemetry's global provider (a no-op until the program
	// sets one).
	TracerProvider trace.TracerProvider
}

// Worker leases and runs jobs.
type Worker struct {
	cfg    Config
	h      Handler
	t      Transport
	log    *slog.Logger
	tracer trace.Tracer
	done   chan completion
	slots  chan struct{}
	beats  beats
}

// New returns a worker; it does nothing until Run.
func New(cfg Config, h Handler) (*Worker, error) {
	if (cfg.URL == "" && cfg.Transport == nil) || len(cfg.Operations) == 0 || h == nil {
		return nil, errors.New("worker: URL, Operations and a handler are required")
	}
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 1)
	cfg.Lease = cmp.Or(cfg.Lease, 60*time.Second)
	cfg.Heartbeat = cmp.Or(cfg.Heartbeat, cfg.Lease/3)
	cfg.PollWait = cmp.Or(cfg.PollWait, 30*time.Second)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, 30*time.Second)
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	t := cfg.Transport
	if t == nil {
		opts := []client.Option{client.WithToken(cfg.Token)}
		if cfg.HTTPClient != nil {
			opts = append(opts, client.WithHTTPClient(cfg.HTTPClient))
		}
		t = NewHTTPTransport(client.New(cfg.URL, opts...))
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	w := &Worker{cfg: cfg, h: h, t: t, log: cmp.Or(cfg.Logger, slog.Default()), tracer: tp.Tracer(instrumentation),
		done: make(chan completion, cfg.Concurrency), slots: make(chan struct{}, cfg.Concurrency),
		beats: beats{every: cfg.Heartbeat, due: map[*Job]time.Time{}}}
	return w, nil
}

// Job is a leased job handed to a Handler.
type Job struct {
	*errand.Job
	// LeaseID identifies the lease this worker holds.
	LeaseID string
	// TraceParent is the W3C trace context of the job's run (its span, or the
	// lease's context when the worker records none), for a handler to send on
	// (as errand's http and exec handlers do); "" when the job has none.
	TraceParent string
	w           *Worker
	ctx         context.Context // the run's: ends when the job must stop
	cancel      context.CancelCauseFunc
	beating     sync.WaitGroup // a heartbeat of the job in flight
}

// Progress reports how far along the job is (0 to 100) and extends the lease.
func (j *Job) Progress(ctx context.Context, percent float64, message string) error {
	return j.w.heartbeat(ctx, j, &errand.Progress{Percent: percent, Message: message})
}

// Artifact stores r as a file of the job (a rendered report, say), downloadable
// from the job's artifacts.
func (j *Job) Artifact(ctx context.Context, name, contentType string, r io.Reader) error {
	return j.w.t.Artifact(ctx, j.LeaseID, name, contentType, r)
}

// Errors a handler may return to steer what happens next.
var (
	// ErrCanceled is the cause of a job context ended by a cancel request.
	ErrCanceled = errors.New("the job was canceled")
	// ErrLeaseLost is the cause of a job context ended because the lease expired.
	ErrLeaseLost = errors.New("the lease was lost")
	// errStopping is the cause when the worker stops before the job finished.
	errStopping = errors.New("the worker is stopping")
)

// Error is a handler error with instructions for the retry.
type Error struct {
	Err error
	// Code is the error code recorded on the job. Defaults to "worker_error".
	Code string
	// NoRetry fails the job now, whatever attempts are left.
	NoRetry bool
	// After overrides the backoff before the next attempt.
	After time.Duration
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Permanent fails the job without retrying.
func Permanent(err error) error { return &Error{Err: err, NoRetry: true} }

// RetryAfter retries the job after d.
func RetryAfter(err error, d time.Duration) error { return &Error{Err: err, After: d} }

// Run leases and runs jobs until ctx ends, then stops leasing, waits up to
// ShutdownTimeout for running jobs and releases those still running.
func (w *Worker) Run(ctx context.Context) error {
	hard, stopJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopJobs(errStopping)
	var jobs sync.WaitGroup
	completerDone := make(chan struct{})
	go func() { w.completer(); close(completerDone) }()
	go w.beats.run(hard, func(j *Job) { _ = w.heartbeat(j.ctx, j, nil) }) // a lost lease cancels j.ctx
	w.leaseLoop(ctx, hard, &jobs)
	finished := make(chan struct{})
	go func() { jobs.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(w.cfg.ShutdownTimeout):
		stopJobs(errStopping) // handlers see ctx end; their jobs are released
		<-finished
	}
	close(w.done)
	<-completerDone
	return nil
}

func (w *Worker) leaseLoop(ctx, hard context.Context, jobs *sync.WaitGroup) {
	failures := 0
	for ctx.Err() == nil {
		select { // wait for a free slot
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		free := 1
	more:
		for free < w.cfg.Concurrency {
			select {
			case w.slots <- struct{}{}:
				free++
			default:
				break more
			}
		}
		leases, err := w.lease(ctx, free)
		if err != nil && ctx.Err() == nil {
			failures++
			w.log.Warn("errand worker: lease failed", "err", err, "attempt", failures)
			sleep(ctx, backoff(failures))
		} else {
			failures = 0
		}
		for i := len(leases); i < free; i++ {
			<-w.slots
		}
		for _, l := range leases {
			jobs.Add(1)
			go func() {
				defer jobs.Done()
				defer func() { <-w.slots }()
				w.run(hard, l)
			}()
		}
	}
}

func (w *Worker) lease(ctx context.Context, n int) ([]errand.Lease, error) {
	return w.t.Lease(ctx, LeaseParams{Operations: w.cfg.Operations, MaxJobs: n, WaitSeconds: w.cfg.PollWait.Seconds(),
		LeaseSeconds: w.cfg.Lease.Seconds(), Worker: w.cfg.Name})
}

// run handles one leased job from start to its final report.
func (w *Worker) run(hard context.Context, l errand.Lease) {
	ctx, cancel := context.WithCancelCause(hard)
	defer cancel(nil)
	ctx, span := w.startSpan(ctx, l)
	defer span.End()
	j := &Job{Job: l.Job, LeaseID: l.ID, TraceParent: traceParent(ctx), w: w, ctx: ctx, cancel: cancel}
	w.beats.add(j)
	result, err := w.call(ctx, j)
	w.beats.remove(j)
	cause := context.Cause(ctx)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	switch {
	case errors.Is(cause, ErrLeaseLost):
		return // someone else has the job now
	case err == nil:
		w.complete(j, result)
	case errors.Is(cause, errStopping):
		w.report(j, "release", func(ctx context.Context) error { return w.t.Release(ctx, j.LeaseID) })
	default:
		w.fail(j, err)
	}
}

// instrumentation names the SDK's tracer.
const instrumentation = "github.com/errandhq/errand/worker"

// startSpan starts the span of a job's run, under the trace its lease names.
func (w *Worker) startSpan(ctx context.Context, l errand.Lease) (context.Context, trace.Span) {
	if l.TraceParent != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": l.TraceParent})
	}
	return w.tracer.Start(ctx, "process "+l.Job.Operation, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("errand.job.id", l.Job.ID), attribute.String("errand.operation", l.Job.Operation),
			attribute.Int("errand.job.attempt", l.Job.Attempt)))
}

// traceParent is ctx's span as a traceparent ("" for none).
func traceParent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// call runs the handler, turning a panic into an error.
func (w *Worker) call(ctx context.Context, j *Job) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v\n%s", p, debug.Stack())
		}
	}()
	return w.h(ctx, j)
}

// beats extends the leases of a worker's running jobs from one goroutine,
// rather than a goroutine and a ticker per job: each job is beaten about every
// Heartbeat (within a quarter of it), each heartbeat on a goroutine of its own
// so that a slow one holds up no other.
type beats struct {
	every time.Duration
	mu    sync.Mutex
	due   map[*Job]time.Time // when each running job's next heartbeat is due
}

// add starts beating j, a Heartbeat from now.
func (b *beats) add(j *Job) {
	b.mu.Lock()
	b.due[j] = time.Now().Add(b.every)
	b.mu.Unlock()
}

// remove stops beating j; once it returns, no heartbeat of j is in flight.
func (b *beats) remove(j *Job) {
	b.mu.Lock()
	delete(b.due, j)
	b.mu.Unlock()
	j.beating.Wait()
}

// run sends the heartbeats that are due until ctx ends.
func (b *beats) run(ctx context.Context, beat func(*Job)) {
	t := time.NewTicker(max(b.every/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			b.mu.Lock()
			for j, at := range b.due {
				if now.Before(at) || j.ctx.Err() != nil {
					continue
				}
				b.due[j] = now.Add(b.every)
				j.beating.Add(1)
				go func() { defer j.beating.Done(); beat(j) }()
			}
			b.mu.Unlock()
		}
	}
}

// heartbeat extends the lease; a cancel request or a lost lease ends the job's context.
func (w *Worker) heartbeat(ctx context.Context, j *Job, p *errand.Progress) error {
	cancelRequested, err := w.t.Heartbeat(ctx, j.LeaseID, w.cfg.Lease.Seconds(), p)
	switch {
	case errors.Is(err, ErrLeaseLost):
		j.cancel(ErrLeaseLost)
	case err != nil:
		w.log.Warn("errand worker: heartbeat failed", "job", j.ID, "err", err)
	case cancelRequested:
		j.cancel(ErrCanceled)
	}
	return err
}

func (w *Worker) fail(j *Job, err error) {
	f := Failure{Code: "worker_error", Message: err.Error(), Retry: true}
	var we *Error
	if errors.As(err, &we) {
		f.Code = cmp.Or(we.Code, f.Code)
		f.Retry = !we.NoRetry
		f.RetryAfterSeconds = we.After.Seconds()
	}
	w.report(j, "fail", func(ctx context.Context) error { return w.t.Fail(ctx, j.LeaseID, f) })
}

// report sends a final report (fail, release) for one lease.
func (w *Worker) report(j *Job, action string, send func(context.Context) error) {
	if err := w.deliver(send); err != nil {
		w.log.Warn("errand worker: "+action+" failed", "job", j.ID, "err", err)
	}
}

// deliver calls send, retrying transient errors until a lease would have
// expired: after that the server has requeued the job anyway.
func (w *Worker) deliver(send func(context.Context) error) error {
	deadline := time.Now().Add(w.cfg.Lease)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := send(ctx)
		cancel()
		if !Transient(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(backoff(attempt))
	}
}

// completion is a finished job waiting for the batch completer.
type completion struct {
	job    *Job
	result json.RawMessage
}

func (w *Worker) complete(j *Job, result any) {
	b, err := json.Marshal(result)
	if err != nil {
		w.fail(j, Permanent(fmt.Errorf("the result is not JSON-encodable: %w", err)))
		return
	}
	w.done <- completion{job: j, result: b} // the completer sends it; the slot is free for the next lease
}

// completer sends completions in batches: whatever finished while the previous
// batch was in flight goes in the next one.
func (w *Worker) completer() {
	batch := make([]completion, 0, 100)
	for c := range w.done {
		batch = append(batch[:0], c)
	fill:
		for len(batch) < cap(batch) {
			select {
			case c, ok := <-w.done:
				if !ok {
					break fill
				}
				batch = append(batch, c)
			default:
				break fill
			}
		}
		w.sendBatch(batch)
	}
}

func (w *Worker) sendBatch(batch []completion) {
	items := make([]Completion, len(batch))
	for i, c := range batch {
		items[i] = Completion{LeaseID: c.job.LeaseID, Result: c.result}
	}
	if err := w.deliver(func(ctx context.Context) error { return w.t.Complete(ctx, items) }); err != nil {
		w.log.Warn("errand worker: complete failed", "jobs", len(batch), "err", err)
	}
}

func backoff(attempt int) time.Duration {
	d := min(time.Duration(1<<min(attempt, 5))*100*time.Millisecond, 5*time.Second)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
