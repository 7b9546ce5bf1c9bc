package webhook

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/lifecycle"
	"github.com/errandhq/errand/netguard"
	"github.com/errandhq/errand/signing"
	"github.com/errandhq/errand/storage"
	"golang.org/x/time/rate"
)

// Config tunes webhook delivery. The zero value is ready to use.
type Config struct {
	// Lead reports whether this node sweeps (retries, deliveries a dead node
	// claimed, retention): with several nodes, only the leader does. nil: always.
	Lead func() bool
	// Timeout bounds one attempt: connecting, sending, and reading the answer.
	// Defaults to 10s.
	Timeout time.Duration
	// Schedule is when attempts are made, each delay counted from the attempt
	// before; its length is the number of attempts. Defaults to DefaultSchedule.
	Schedule []time.Duration
	// Concurrency is how many attempts to one endpoint (or one callback host)
	// run at once. Defaults to 16.
	Concurrency int
	// RateLimit caps attempts per second to one endpoint unless the endpoint
	// sets its own; 0 (the default) sets no cap.
	RateLimit int
	// DisableAfter disables an endpoint whose attempts have all failed for this
	// long. Defaults to 5 days.
	DisableAfter time.Duration
	// Retention is how long finished deliveries and their attempts are kept.
	// Defaults to 30 days.
	Retention time.Duration
	// RotationOverlap is how long the previous secret keeps signing after a
	// rotation. Defaults to 24h.
	RotationOverlap time.Duration
	// QueueSize is how many deliveries one endpoint may have waiting in memory;
	// more wait in the store. Defaults to 10,000.
	QueueSize int
	// Guard keeps deliveries away from private addresses. Defaults to a guard
	// that allows none.
	Guard *netguard.Guard
	// Now is the clock. Defaults to errand.Now.
	Now func() time.Time
	// Log defaults to slog.Default().
	Log *slog.Logger
	// Meter hears every attempt and every endpoint disabled (metrics, usage).
	// Defaults to none.
	Meter Meter
	// Tracer makes each attempt's span; without one an attempt sends the
	// traceparent its delivery keeps, as it is.
	Tracer Tracer
}

// Meter hears what the deliverer does, for metrics and usage analytics. Its
// methods must be quick.
type Meter interface {
	// Attempted reports an attempt of a delivery of tenant: its outcome
	// (succeeded, failed, timeout, error, gone, skipped) and how long it took.
	Attempted(tenant, outcome string, latency time.Duration)
	// EndpointDisabled reports an endpoint of tenant errand disabled, and
	// why (gone, failing).
	EndpointDisabled(tenant, reason string)
}

// Tracer traces delivery attempts.
type Tracer interface {
	// Attempt starts the span of an attempt of x to target under the trace x
	// keeps; it returns the traceparent to send ("" for none) and the
	// function that ends the span with the answer's status (0 for none) and
	// the error ("" for none).
	Attempt(ctx context.Context, x *errand.Delivery, target string) (traceparent string, end func(status int, err string))
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.Timeout = cmp.Or(out.Timeout, errand.DefaultWebhookTimeout)
	if len(out.Schedule) == 0 {
		out.Schedule = DefaultSchedule
	}
	out.Concurrency = cmp.Or(out.Concurrency, errand.DefaultWebhookConcurrency)
	out.DisableAfter = cmp.Or(out.DisableAfter, errand.DefaultWebhookDisableAfter)
	out.Retention = cmp.Or(out.Retention, errand.DefaultWebhookRetention)
	out.RotationOverlap = cmp.Or(out.RotationOverlap, errand.DefaultRotationOverlap)
	out.QueueSize = cmp.Or(out.QueueSize, 10000)
	if out.Guard == nil {
		out.Guard = &netguard.Guard{}
	}
	if out.Now == nil {
		out.Now = errand.Now
	}
	if out.Log == nil {
		out.Log = slog.Default()
	}
	return out
}

func (c *Config) validate() error {
	switch {
	case c.Timeout <= 0 || c.Concurrency < 1 || c.QueueSize < 1:
		return errors.New("timeout, concurrency and queue size must be positive")
	case c.RateLimit < 0 || c.DisableAfter <= 0 || c.Retention <= 0 || c.RotationOverlap < 0:
		return errors.New("rate limit and rotation overlap must not be negative, disable-after and retention must be positive")
	}
	for _, d := range c.Schedule {
		if d < 0 {
			return errors.New("schedule delays must not be negative")
		}
	}
	return nil
}

// claim is how long a delivery handed to a node's memory belongs to it.
func (c *Config) claim() time.Duration { return c.Timeout + 5*time.Second }

// Deliverer sends deliveries: the first attempt straight from the commit that
// created them, retries when they fall due. Each endpoint (and each callback
// host) has its own queue, workers and rate limit, so a slow one delays only
// itself.
type Deliverer struct {
	cfg     Config
	o       *Outbox
	store   storage.Store
	keys    *callbackKeys
	client  *http.Client
	mu      sync.Mutex
	lanes   map[string]*lane
	pending map[string]struct{} // ids queued or being sent on this node
	wake    chan struct{}
	loop    lifecycle.Loop
}

// lane is one endpoint's (or callback host's) queue.
type lane struct {
	key     string
	q       chan *errand.Delivery
	running int // workers, under Deliverer.mu
	mu      sync.Mutex
	limit   *rate.Limiter // nil: no limit
}

func newDeliverer(o *Outbox, keys *callbackKeys, cfg Config) *Deliverer {
	tr := &http.Transport{
		Proxy:               nil, // a proxy would reach addresses the guard refuses
		DialContext:         cfg.Guard.Dialer(cfg.Timeout).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: cfg.Timeout,
	}
	d := &Deliverer{cfg: cfg, o: o, store: o.inner, keys: keys,
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer, and a failed one
		}},
		lanes: map[string]*lane{}, pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}
	return d
}

// Committed hands the deliveries a commit of this node created to their lanes
// for their first attempt, at once. Before Start (and after Stop) they are
// left in the store, where the sweeper sends them when their claim runs out.
func (d *Deliverer) Committed(c *storage.Commit) {
	for _, x := range c.Deliveries {
		d.enqueue(x)
	}
}

// Start begins delivering and sweeping: sending what falls due (retries, and
// what a crashed node had claimed) and reloading endpoints.
func (d *Deliverer) Start(ctx context.Context) error {
	d.loop.Go(ctx, d.sweep, func(ctx context.Context) { d.o.Run(ctx, 30*time.Second) })
	return nil
}

// Stop ends delivery; attempts in flight are abandoned unrecorded (their claim
// runs out and they are sent again).
func (d *Deliverer) Stop(ctx context.Context) error { return d.loop.Halt(ctx) }

// enqueue queues x on its lane unless it is already queued here. A full lane
// leaves it in the store, where the sweeper finds it when its claim runs out.
func (d *Deliverer) enqueue(x *errand.Delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.pending[x.ID]; ok {
		return
	}
	ctx := d.loop.Context()
	if ctx == nil || ctx.Err() != nil {
		return // not running: the sweeper sends it when its claim runs out
	}
	l := d.laneFor(x)
	select {
	case l.q <- x:
		d.pending[x.ID] = struct{}{}
		if l.running < d.cfg.Concurrency {
			if done, ok := d.loop.Add(); ok {
				l.running++
				go func() { defer done(); d.work(ctx, l) }()
			}
		}
	default:
	}
}

// laneFor returns x's lane (under d.mu).
func (d *Deliverer) laneFor(x *errand.Delivery) *lane {
	key, rate := "cb:"+hostOf(x.URL), d.cfg.RateLimit
	if x.EndpointID != "" {
		key = x.EndpointID
		if ep := d.o.endpoint(x.EndpointID); ep != nil && ep.RateLimit > 0 {
			rate = ep.RateLimit
		}
	}
	l := d.lanes[key]
	if l == nil {
		l = &lane{key: key, q: make(chan *errand.Delivery, d.cfg.QueueSize)}
		d.lanes[key] = l
	}
	l.mu.Lock()
	l.setRate(rate)
	l.mu.Unlock()
	return l
}

// setRate makes the lane send at most r attempts a second (bursts of r); 0
// sets no limit (under l.mu).
func (l *lane) setRate(r int) {
	switch {
	case r <= 0:
		l.limit = nil
	case l.limit == nil:
		l.limit = rate.NewLimiter(rate.Limit(r), r)
	case l.limit.Burst() != r:
		l.limit.SetLimit(rate.Limit(r))
		l.limit.SetBurst(r)
	}
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return raw
}

// laneIdle is how long a lane's worker waits for work before it exits.
const laneIdle = 30 * time.Second

// work sends a lane's deliveries one at a time.
func (d *Deliverer) work(ctx context.Context, l *lane) {
	idle := time.NewTimer(laneIdle)
	defer idle.Stop()
	for {
		select {
		case x := <-l.q:
			d.deliver(ctx, l, x)
			idle.Reset(laneIdle)
		case <-idle.C:
			d.mu.Lock()
			if len(l.q) == 0 {
				l.running--
				if l.running == 0 {
					delete(d.lanes, l.key)
				}
				d.mu.Unlock()
				return
			}
			d.mu.Unlock()
			idle.Reset(laneIdle)
		case <-ctx.Done():
			return
		}
	}
}

// deliver makes one attempt of x and records it.
func (d *Deliverer) deliver(ctx context.Context, l *lane, x *errand.Delivery) {
	defer func() {
		d.mu.Lock()
		delete(d.pending, x.ID)
		d.mu.Unlock()
	}()
	l.mu.Lock()
	limit := l.limit
	l.mu.Unlock()
	if limit != nil && limit.Wait(ctx) != nil {
		return // shutting down
	}
	out := d.attempt(ctx, x)
	if ctx.Err() != nil {
		return // shutting down: not the receiver's fault; sent again after restart
	}
	if m := d.cfg.Meter; m != nil {
		m.Attempted(x.Tenant, out.kind(), out.latency)
	}
	if err := d.record(ctx, x, out); err != nil && !errors.Is(err, storage.ErrNotFound) && ctx.Err() == nil {
		d.cfg.Log.Error("record webhook attempt", "delivery", x.ID, "err", err)
	}
}

// outcome is what one attempt came to.
type outcome struct {
	skip       string // not attempted: why (the endpoint is disabled or gone)
	endpoint   *errand.Endpoint
	at         time.Time
	status     int
	latency    time.Duration
	err        string
	response   string
	retryAfter time.Duration
	ok, gone   bool
	timeout    bool // no answer in time
}

// kind is the outcome as Meter names it.
func (o *outcome) kind() string {
	switch {
	case o.skip != "":
		return "skipped"
	case o.ok:
		return "succeeded"
	case o.gone:
		return "gone"
	case o.timeout:
		return "timeout"
	case o.status == 0:
		return "error"
	}
	return "failed"
}

// maxResponse is how much of an answer's body is kept with the attempt.
const maxResponse = 1024

// attempt sends x once.
func (d *Deliverer) attempt(ctx context.Context, x *errand.Delivery) outcome {
	out := outcome{at: d.cfg.Now()}
	target, secrets := x.URL, []string(nil)
	if x.EndpointID != "" {
		// The snapshot is current for changes made here (reloaded before the
		// change returns); an endpoint it lacks may be another node's new one.
		ep, err := d.o.endpoint(x.EndpointID), error(nil)
		if ep == nil {
			ep, err = d.store.GetEndpoint(ctx, x.Tenant, x.EndpointID)
		}
		switch {
		case errors.Is(err, storage.ErrNotFound):
			out.skip = "endpoint deleted"
			return out
		case err != nil:
			out.err = "reading the endpoint: " + err.Error()
			return out
		case ep.Disabled:
			out.skip = "endpoint disabled"
			return out
		}
		out.endpoint, target, secrets = ep, ep.URL, ep.Secrets(out.at)
	} else {
		s, err := d.keys.get(ctx, x.Tenant)
		if err != nil {
			out.err = "reading the callback secret: " + err.Error()
			return out
		}
		secrets = s.secrets(out.at)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(x.Payload))
	if err != nil {
		out.err = "bad URL: " + err.Error()
		return out
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "errand-webhooks/1")
	signing.SetHeaders(req.Header, x.ID, out.at, x.Payload, secrets...)
	tp, endSpan := x.TraceParent, func(int, string) {}
	if d.cfg.Tracer != nil {
		tp, endSpan = d.cfg.Tracer.Attempt(ctx, x, target)
	}
	if tp != "" {
		req.Header.Set("Traceparent", tp)
	}
	defer func() { endSpan(out.status, out.err) }()
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		out.latency = time.Since(start)
		out.err, out.timeout = describe(err, d.cfg.Timeout), errors.Is(err, context.DeadlineExceeded)
		return out
	}
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection can be reused
	resp.Body.Close()
	// The start of the answer is kept as text: UTF-8 and no NUL (PostgreSQL's
	// text holds neither; the attempt could not be stored and the delivery
	// would be sent again and again).
	out.latency, out.status, out.response = time.Since(start), resp.StatusCode,
		string(bytes.ReplaceAll(bytes.ToValidUTF8(b, []byte("\uFFFD")), []byte{0}, nil))
	switch {
	case rerr != nil:
		out.err = "reading the answer: " + describe(rerr, d.cfg.Timeout)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		out.ok = true
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		out.err = fmt.Sprintf("answered %d: redirects are not followed (Location: %s)", resp.StatusCode,
			errand.Truncate(resp.Header.Get("Location"), 200))
	case resp.StatusCode == http.StatusGone:
		out.err, out.gone = "answered 410 Gone: the endpoint is disabled", true
	default:
		out.err = "answered " + strconv.Itoa(resp.StatusCode)
		out.retryAfter, _ = retryAfter(resp, out.at)
	}
	return out
}

// describe says why a request failed, without Go's wrapping.
func describe(err error, timeout time.Duration) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, netguard.ErrRefused):
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "refused: " + err.Error()
	}
	return errand.Truncate(err.Error(), 500)
}

// record writes an attempt and what follows from it, in one transaction: the
// delivery's new state, the attempt, and the endpoint's health.
func (d *Deliverer) record(ctx context.Context, x *errand.Delivery, out outcome) error {
	var changed, retry bool
	var disabled string
	err := d.store.WithTx(ctx, func(tx storage.Tx) error {
		changed, retry, disabled = false, false, ""
		if out.skip != "" {
			if out.skip == "endpoint deleted" {
				return storage.ErrNotFound
			}
			x.Status, x.NextAttemptAt = errand.DeliveryFailed, nil
			return tx.UpdateDelivery(x)
		}
		at := out.at
		x.AttemptCount++
		x.Step++
		x.LastAttemptAt = &at
		switch {
		case out.ok:
			x.Status, x.NextAttemptAt = errand.DeliverySucceeded, nil
		case out.gone || x.Step >= len(d.cfg.Schedule):
			x.Status, x.NextAttemptAt = errand.DeliveryFailed, nil
		default:
			delay := jitter(d.cfg.Schedule[x.Step])
			if out.retryAfter > 0 {
				delay = out.retryAfter
			}
			next := d.cfg.Now().Add(delay) // counted from the attempt's end
			x.Status, x.NextAttemptAt, retry = errand.DeliveryPending, &next, true
		}
		if err := tx.UpdateDelivery(x); err != nil {
			return err
		}
		a := errand.Attempt{N: x.AttemptCount, Time: at, StatusCode: out.status,
			LatencyMS: float64(out.latency.Microseconds()) / 1000, Error: out.err, Response: out.response}
		if err := tx.InsertAttempt(x.ID, &a); err != nil {
			return err
		}
		if out.endpoint == nil {
			return nil
		}
		var err error
		changed, disabled, err = d.health(tx, out)
		return err
	})
	if err != nil {
		return err
	}
	if disabled != "" {
		d.cfg.Log.Warn("webhook endpoint disabled", "endpoint", x.EndpointID, "reason", disabled, "url", out.endpoint.URL)
		if m := d.cfg.Meter; m != nil {
			m.EndpointDisabled(x.Tenant, disabled)
		}
	}
	if changed {
		if err := d.o.Reload(ctx); err != nil {
			d.cfg.Log.Warn("reload webhook endpoints", "err", err)
		}
	}
	if retry {
		d.poke()
	}
	return nil
}

// health keeps an endpoint's failing_since and disables it after a 410 or after
// failing for DisableAfter; the disabling commits with an endpoint.disabled
// event. It reports whether the endpoint changed, and why it was disabled
// ("" when it was not).
func (d *Deliverer) health(tx storage.Tx, out outcome) (changed bool, disabled string, err error) {
	if out.ok && out.endpoint.FailingSince == nil {
		return false, "", nil
	}
	ep, err := tx.GetEndpoint(out.endpoint.ID)
	if err != nil {
		return false, "", err
	}
	if out.ok {
		if ep.FailingSince != nil {
			ep.FailingSince, changed = nil, true
		}
	} else {
		if ep.FailingSince == nil {
			ep.FailingSince, changed = &out.at, true
		}
		reason := ""
		if out.gone {
			reason = "gone"
		} else if out.at.Sub(*ep.FailingSince) >= d.cfg.DisableAfter {
			reason = "failing"
		}
		if reason != "" && !ep.Disabled {
			ep.Disabled, ep.DisabledReason, changed, disabled = true, reason, true, reason
			b, err := json.Marshal(ep) // the event's data is the endpoint
			if err != nil {
				return false, "", err
			}
			exp := out.at.Add(d.cfg.Retention)
			if err := tx.InsertEvent(&errand.Event{Stream: errand.StreamWebhooks, Tenant: ep.Tenant,
				Type: errand.EventEndpointDisabled, Time: out.at, Data: b, ExpiresAt: &exp}); err != nil {
				return false, "", err
			}
		}
	}
	if !changed {
		return false, "", nil
	}
	ep.UpdatedAt = out.at
	return true, disabled, tx.UpdateEndpoint(ep)
}

// poke wakes the sweeper to look at when the next delivery is due.
func (d *Deliverer) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// sweepBatch is how many due deliveries one sweep claims.
const sweepBatch = 500

// sweep claims due deliveries and queues them, sleeping until the next is due
// (at most a second, so other nodes' retries are found too); once a minute it
// deletes deliveries past retention.
func (d *Deliverer) sweep(ctx context.Context) {
	clean := time.NewTicker(time.Minute)
	defer clean.Stop()
	for {
		lead := d.cfg.Lead == nil || d.cfg.Lead()
		n, err := 0, error(nil)
		if lead {
			n, err = d.claimDue(ctx)
		}
		if err != nil && ctx.Err() == nil {
			d.cfg.Log.Warn("claim due webhook deliveries", "err", err)
		}
		if n == sweepBatch {
			continue
		}
		wait := time.Second
		if next, err := d.store.NextDelivery(ctx); err == nil && !next.IsZero() {
			wait = min(wait, max(next.Sub(d.cfg.Now()), 5*time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.wake:
		case <-t.C:
		case <-clean.C:
			if lead {
				d.expire(ctx)
			}
		}
		t.Stop()
	}
}

// claimDue pushes the claim of every due delivery forward and queues those not
// already queued here.
func (d *Deliverer) claimDue(ctx context.Context) (int, error) {
	now := d.cfg.Now()
	var due []*errand.Delivery
	err := d.store.WithTx(ctx, func(tx storage.Tx) error {
		var err error
		if due, err = tx.DueDeliveries(now, sweepBatch); err != nil {
			return err
		}
		next := now.Add(d.cfg.claim())
		for _, x := range due {
			x.NextAttemptAt = &next
			if err := tx.UpdateDelivery(x); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, x := range due {
		d.enqueue(x)
	}
	return len(due), nil
}

// expire deletes finished deliveries older than the retention.
func (d *Deliverer) expire(ctx context.Context) {
	for {
		var n int
		err := d.store.WithTx(ctx, func(tx storage.Tx) error {
			var err error
			n, err = tx.ExpireDeliveries(d.cfg.Now().Add(-d.cfg.Retention), 1000)
			return err
		})
		if err != nil {
			if ctx.Err() == nil {
				d.cfg.Log.Warn("delete old webhook deliveries", "err", err)
			}
			return
		}
		if n < 1000 {
			return
		}
	}
}
