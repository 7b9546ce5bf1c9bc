package telemetry

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/lifecycle"
	"github.com/errandhq/errand/storage"
)

// UsageConfig tunes usage analytics. The zero value is ready to use.
type UsageConfig struct {
	// MinuteRetention is how long minute buckets are kept. Defaults to 48 hours.
	MinuteRetention time.Duration
	// HourRetention is how long hour buckets are kept. Defaults to 90 days.
	HourRetention time.Duration
	// FlushInterval is how often this node writes its buckets that changed.
	// Defaults to 5 seconds.
	FlushInterval time.Duration
	// Lead reports whether this node deletes old buckets (the leader, with
	// several nodes on one database). nil: always.
	Lead func() bool
	// Now is the clock. Defaults to errand.Now.
	Now func() time.Time
	// Log hears flushes that failed. Defaults to slog.Default().
	Log *slog.Logger
}

// Usage records what each tenant used, per operation, by minute and by hour:
// jobs submitted, succeeded, failed and canceled, run time and queue wait
// (as sketches: mergeable histograms), channel events published, webhook
// deliveries and artifact bytes. It hears this node's commits (a
// storage.Observer) and delivery attempts (a webhook Meter), keeps the
// buckets open in memory and writes those that changed every FlushInterval:
// each node its own rows, whole (storage.UsageRow), so nodes never contend
// and a write that runs twice changes nothing; Report sums every node's.
type Usage struct {
	store storage.Store
	cfg   UsageConfig
	node  string
	mu    sync.Mutex
	open  map[usageKey]*usageBucket
	loop  lifecycle.Loop
}

var _ storage.Observer = (*Usage)(nil)

// usageKey names one bucket of one tenant and operation.
type usageKey struct {
	tenant, op string
	step       time.Duration
	bucket     time.Time
}

// usageBucket is this node's running totals of a bucket.
type usageBucket struct {
	submitted, succeeded, failed, canceled, events, deliveries, bytes int64
	run, wait                                                         sketch
	dirty                                                             bool
}

// NewUsage returns the stopped recorder over store.
func NewUsage(store storage.Store, cfg *UsageConfig) (*Usage, error) {
	c := UsageConfig{}
	if cfg != nil {
		c = *cfg
	}
	c.MinuteRetention = cmp.Or(c.MinuteRetention, errand.DefaultUsageMinuteRetention)
	c.HourRetention = cmp.Or(c.HourRetention, errand.DefaultUsageHourRetention)
	c.FlushInterval = cmp.Or(c.FlushInterval, errand.DefaultUsageFlushInterval)
	if c.Now == nil {
		c.Now = errand.Now
	}
	c.Log = cmp.Or(c.Log, slog.Default())
	if c.MinuteRetention < time.Minute || c.HourRetention < time.Hour || c.FlushInterval <= 0 {
		return nil, errors.New("usage config: retentions must be at least a minute and an hour, the flush interval positive")
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	// A node id of its own each start: rows a node wrote before a restart are
	// kept (and summed), never overwritten by the new process's.
	return &Usage{store: store, cfg: c, node: hex.EncodeToString(b[:]), open: map[usageKey]*usageBucket{}}, nil
}

// steps are the bucket widths kept.
var steps = []time.Duration{time.Minute, time.Hour}

// Committed counts this node's committed events.
func (u *Usage) Committed(c *storage.CommitStats) {
	if len(c.Events) == 0 {
		return
	}
	now := u.cfg.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, e := range c.Events {
		switch {
		case e.Job != nil:
			u.jobEvent(e, now)
		case e.Stream == errand.StreamWebhooks || len(e.Stream) > 4 && e.Stream[:4] == "job_":
		default:
			u.each(e.Tenant, "", e.Time, now, func(b *usageBucket) { b.events++ })
		}
	}
}

// Failed does nothing: a failed transaction used nothing.
func (u *Usage) Failed(error) {}

// jobEvent counts a job event in its tenant's and operation's buckets (u.mu held).
func (u *Usage) jobEvent(e *errand.Event, now time.Time) {
	j := e.Job
	var fn func(b *usageBucket)
	switch e.Type {
	case errand.EventJobCreated:
		fn = func(b *usageBucket) { b.submitted++ }
	case errand.EventJobStarted:
		if j.StartedAt == nil {
			return
		}
		wait := max(j.StartedAt.Sub(j.RunAt), 0)
		fn = func(b *usageBucket) { b.wait.add(wait) }
	case errand.EventJobRetrying:
		if r := RetryReason(j); r == "released" || r == "manual" {
			return
		}
		run := runTime(j, e.Time)
		fn = func(b *usageBucket) { b.run.add(run) }
	case errand.EventJobSucceeded, errand.EventJobFailed, errand.EventJobCanceled:
		ran := e.Type != errand.EventJobCanceled || j.CancelRequested
		run, bytes := runTime(j, e.Time), artifactBytes(j)
		fn = func(b *usageBucket) {
			switch e.Type {
			case errand.EventJobSucceeded:
				b.succeeded++
			case errand.EventJobFailed:
				b.failed++
			default:
				b.canceled++
			}
			if ran && j.StartedAt != nil {
				b.run.add(run)
			}
			b.bytes += bytes
		}
	default:
		return
	}
	u.each(j.Tenant, j.Operation, e.Time, now, fn)
}

func runTime(j *errand.Job, end time.Time) time.Duration {
	if j.StartedAt == nil {
		return 0
	}
	return max(end.Sub(*j.StartedAt), 0)
}

func artifactBytes(j *errand.Job) int64 {
	var n int64
	for _, a := range j.Artifacts {
		n += a.Size
	}
	return n
}

// each applies fn to the minute and the hour bucket of tenant and op at t
// (u.mu held). A bucket this node already closed is not opened again (its
// row would be rewritten with the late count alone): t then counts in now's.
func (u *Usage) each(tenant, op string, t, now time.Time, fn func(*usageBucket)) {
	for _, step := range steps {
		start := t.UTC().Truncate(step)
		if u.closed(start, step, now) {
			start = now.UTC().Truncate(step)
		}
		k := usageKey{tenant, op, step, start}
		b := u.open[k]
		if b == nil {
			b = &usageBucket{}
			u.open[k] = b
		}
		fn(b)
		b.dirty = true
	}
}

// closed reports whether the bucket starting at start is past the time this
// node keeps buckets open after they end.
func (u *Usage) closed(start time.Time, step time.Duration, now time.Time) bool {
	return now.Sub(start.Add(step)) > u.grace()
}

// grace is how long a bucket stays open after it ends, for events committed
// late in it.
func (u *Usage) grace() time.Duration { return 2*u.cfg.FlushInterval + 10*time.Second }

// Attempted counts a webhook delivery attempt in its tenant's usage (a
// skipped one, to an endpoint disabled or deleted, is not one).
func (u *Usage) Attempted(tenant, outcome string, _ time.Duration) {
	if outcome == "skipped" {
		return
	}
	now := u.cfg.Now()
	u.mu.Lock()
	u.each(tenant, "", now, now, func(b *usageBucket) { b.deliveries++ })
	u.mu.Unlock()
}

// EndpointDisabled does nothing: it is not usage.
func (u *Usage) EndpointDisabled(tenant, reason string) {}

// Start runs the flusher (and, on the leader, retention) until Stop.
func (u *Usage) Start(ctx context.Context) error {
	u.loop.Go(ctx, u.run)
	return nil
}

// Stop ends the flusher after writing what changed (until ctx ends).
func (u *Usage) Stop(ctx context.Context) error {
	err := u.loop.Halt(ctx)
	return errors.Join(err, u.Flush(ctx))
}

func (u *Usage) run(ctx context.Context) {
	flush := time.NewTicker(u.cfg.FlushInterval)
	defer flush.Stop()
	var nextExpiry time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
		}
		if err := u.Flush(ctx); err != nil && ctx.Err() == nil {
			u.cfg.Log.Warn("usage: writing this node's buckets", "err", err)
		}
		if now := u.cfg.Now(); now.After(nextExpiry) && (u.cfg.Lead == nil || u.cfg.Lead()) {
			if err := u.expire(ctx, now); err != nil && ctx.Err() == nil {
				u.cfg.Log.Warn("usage: deleting old buckets", "err", err)
			}
			nextExpiry = now.Add(time.Minute)
		}
	}
}

// Flush writes the buckets that changed since the last flush, in one
// transaction, and forgets the closed buckets it has written.
func (u *Usage) Flush(ctx context.Context) error {
	u.mu.Lock()
	var rows []storage.UsageRow
	var keys []usageKey
	for k, b := range u.open {
		if b.dirty {
			rows = append(rows, u.row(k, b))
			keys = append(keys, k)
			b.dirty = false
		}
	}
	u.mu.Unlock()
	var err error
	if len(rows) > 0 {
		err = u.store.WithTx(ctx, func(tx storage.Tx) error { return tx.PutUsage(rows) })
	}
	now := u.cfg.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil {
		for _, k := range keys {
			if b := u.open[k]; b != nil {
				b.dirty = true // written next time
			}
		}
		return err
	}
	for k, b := range u.open {
		if !b.dirty && u.closed(k.bucket, k.step, now) {
			delete(u.open, k)
		}
	}
	return nil
}

// row is this node's row of a bucket.
func (u *Usage) row(k usageKey, b *usageBucket) storage.UsageRow {
	return storage.UsageRow{Tenant: k.tenant, Operation: k.op, Step: k.step, Bucket: k.bucket, Node: u.node,
		Submitted: b.submitted, Succeeded: b.succeeded, Failed: b.failed, Canceled: b.canceled, Events: b.events,
		Deliveries: b.deliveries, ArtifactBytes: b.bytes, RunTime: b.run.encode(), QueueWait: b.wait.encode()}
}

// expire deletes the buckets past their retention.
func (u *Usage) expire(ctx context.Context, now time.Time) error {
	for _, st := range []struct {
		step time.Duration
		keep time.Duration
	}{{time.Minute, u.cfg.MinuteRetention}, {time.Hour, u.cfg.HourRetention}} {
		for {
			var n int
			err := u.store.WithTx(ctx, func(tx storage.Tx) error {
				var err error
				n, err = tx.ExpireUsage(st.step, now.Add(-st.keep), 1000)
				return err
			})
			if err != nil {
				return fmt.Errorf("expire %s buckets: %w", st.step, err)
			}
			if n < 1000 {
				break
			}
		}
	}
	return nil
}
