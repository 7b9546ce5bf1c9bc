// Package runner runs the jobs of operations whose handler errand runs itself:
// runner/httptarget calls a URL, runner/exec runs a command. Each operation gets
// the same worker loop remote workers use (package worker), talking to the queue
// in-process instead of over HTTP, so leases, heartbeats, cancels, retries and
// graceful stops behave exactly as for pull workers.
package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/lifecycle"
	"github.com/errandhq/errand/queue"
	"github.com/errandhq/errand/worker"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config tunes the pool. The zero value is ready to use.
type Config struct {
	// Log hears what the worker loops do. Defaults to slog.Default().
	Log *slog.Logger
	// TracerProvider makes each job run's span (see worker.Config). Defaults
	// to none.
	TracerProvider trace.TracerProvider
}

// Pool runs one worker loop per operation errand runs itself.
type Pool struct {
	log     *slog.Logger
	workers []*worker.Worker
	loop    lifecycle.Loop
}

// New makes the worker loops of the operations that have a handler (by
// operation name) against q; Start runs them.
func New(q *queue.Queue, ops []errand.Operation, handlers map[string]worker.Handler, cfg *Config) (*Pool, error) {
	p := &Pool{log: slog.Default()}
	var tp trace.TracerProvider = noop.NewTracerProvider()
	if cfg != nil && cfg.Log != nil {
		p.log = cfg.Log
	}
	if cfg != nil && cfg.TracerProvider != nil {
		tp = cfg.TracerProvider
	}
	host, _ := os.Hostname()
	for _, op := range ops {
		h, ok := handlers[op.Name]
		if !ok {
			continue
		}
		w, err := worker.New(worker.Config{Transport: &Transport{Q: q}, Operations: []string{op.Name},
			Concurrency: op.Handler.Workers, Lease: time.Minute, PollWait: 30 * time.Second,
			ShutdownTimeout: 10 * time.Second, Name: "errand-" + op.Handler.Type + "@" + host, Logger: p.log,
			TracerProvider: tp}, h)
		if err != nil {
			return nil, fmt.Errorf("runner for %s: %w", op.Name, err)
		}
		p.workers = append(p.workers, w)
		p.log.Info("running operation", "operation", op.Name, "handler", op.Handler.Type, "workers", op.Handler.Workers)
	}
	return p, nil
}

// Start runs every worker loop until Stop.
func (p *Pool) Start(ctx context.Context) error {
	for _, w := range p.workers {
		p.loop.Go(ctx, func(ctx context.Context) { _ = w.Run(ctx) })
	}
	return nil
}

// Stop stops leasing, lets running jobs finish (up to 10 s) and releases the rest.
func (p *Pool) Stop(ctx context.Context) error { return p.loop.Halt(ctx) }

// Transport is worker.Transport straight onto the queue, for errand's own runners.
type Transport struct {
	Q *queue.Queue
}

var _ worker.Transport = (*Transport)(nil)

// Lease takes jobs from the queue.
func (t *Transport) Lease(ctx context.Context, p worker.LeaseParams) ([]errand.Lease, error) {
	return t.Q.Lease(ctx, queue.LeaseParams{Operations: p.Operations, MaxJobs: p.MaxJobs, WaitSeconds: p.WaitSeconds,
		LeaseSeconds: p.LeaseSeconds, Worker: p.Worker})
}

// Heartbeat extends a lease.
func (t *Transport) Heartbeat(ctx context.Context, leaseID string, extend float64, p *errand.Progress) (bool, error) {
	res, err := t.Q.Heartbeat(ctx, leaseID, queue.HeartbeatParams{Progress: p, ExtendSeconds: extend})
	return res.CancelRequested, worker.LeaseLost(err)
}

// Complete finishes leases.
func (t *Transport) Complete(ctx context.Context, cs []worker.Completion) error {
	qc := make([]queue.Completion, len(cs))
	for i, c := range cs {
		qc[i] = queue.Completion{LeaseID: c.LeaseID, Result: c.Result}
	}
	_, err := t.Q.CompleteBatch(ctx, qc)
	return err
}

// Fail ends an attempt.
func (t *Transport) Fail(ctx context.Context, leaseID string, f worker.Failure) error {
	var fp queue.FailParams
	fp.Error.Code, fp.Error.Message, fp.Retry = f.Code, f.Message, &f.Retry
	if f.RetryAfterSeconds > 0 {
		fp.RetryAfterSeconds = &f.RetryAfterSeconds
	}
	_, err := t.Q.Fail(ctx, leaseID, fp)
	return worker.LeaseLost(err)
}

// Release hands a job back.
func (t *Transport) Release(ctx context.Context, leaseID string) error {
	_, err := t.Q.Release(ctx, leaseID)
	return worker.LeaseLost(err)
}

// Artifact stores a file on the job.
func (t *Transport) Artifact(ctx context.Context, leaseID, name, contentType string, r io.Reader) error {
	_, err := t.Q.AddArtifact(ctx, leaseID, name, contentType, r)
	return worker.LeaseLost(err)
}
