package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// Outbox turns events into deliveries inside the events' own transactions: it
// is the store's EventHook, so every event appended also writes a delivery for
// each endpoint whose filter selects it, and for a job's callback_url when the
// event ends the job. Nothing committed is ever without its deliveries, and
// nothing rolled back has any; the driver reports the committed deliveries in
// storage.Commit.Deliveries, which the deliverer hears.
type Outbox struct {
	inner storage.Store
	snap  atomic.Pointer[snapshot]
	mu    sync.Mutex // serializes reloads, so the newest read is installed last
	ids   errand.IDGenerator
	now   func() time.Time
	claim time.Duration
	log   *slog.Logger
	// changed wakes Run when endpoints changed, here or on another node.
	changed chan struct{}
}

// Committed hears every commit: endpoints changed (by any node) make Run
// read them again at once.
func (o *Outbox) Committed(c *storage.Commit) {
	if slices.Contains(c.Changed, storage.ChangedEndpoints) {
		select {
		case o.changed <- struct{}{}:
		default:
		}
	}
}

// snapshot is the endpoints as last read, for matching without a query.
type snapshot struct {
	byTenant map[string][]target // enabled endpoints only
	byID     map[string]*errand.Endpoint
}

type target struct {
	ep *errand.Endpoint
	f  *Filter
}

var _ storage.EventHook = (*Outbox)(nil)

// NewOutbox returns the outbox of store's events. claim is how long a new delivery belongs to this node
// before any node may send it (its first attempt is made at once, from memory).
func NewOutbox(store storage.Store, claim time.Duration, now func() time.Time, log *slog.Logger) *Outbox {
	o := &Outbox{inner: store, now: now, claim: claim, log: log, changed: make(chan struct{}, 1)}
	o.snap.Store(&snapshot{byTenant: map[string][]target{}, byID: map[string]*errand.Endpoint{}})
	return o
}

// Reload reads every endpoint again. Call after an endpoint changes; on several
// nodes it also runs periodically (Run).
func (o *Outbox) Reload(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	eps, err := o.inner.ListEndpoints(ctx, "")
	if err != nil {
		return fmt.Errorf("read webhook endpoints: %w", err)
	}
	s := &snapshot{byTenant: map[string][]target{}, byID: make(map[string]*errand.Endpoint, len(eps))}
	for _, ep := range eps {
		s.byID[ep.ID] = ep
		if ep.Disabled {
			continue
		}
		f, err := ParseFilter(ep.Events)
		if err != nil { // stored filters were checked when written
			o.log.Error("webhook endpoint has a bad filter; skipping it", "endpoint", ep.ID, "err", err)
			continue
		}
		s.byTenant[ep.Tenant] = append(s.byTenant[ep.Tenant], target{ep: ep, f: f})
	}
	o.snap.Store(s)
	return nil
}

// Run reloads the endpoints every interval until ctx ends, so that changes made
// on other nodes are seen.
func (o *Outbox) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-o.changed:
		}
		if err := o.Reload(ctx); err != nil && ctx.Err() == nil {
			o.log.Warn("reload webhook endpoints", "err", err)
		}
	}
}

// endpoint returns the endpoint with id as last read.
func (o *Outbox) endpoint(id string) *errand.Endpoint { return o.snap.Load().byID[id] }

// EventAppended writes the deliveries e owes, in e's transaction.
func (o *Outbox) EventAppended(tx storage.Tx, e *errand.Event) error {
	targets := o.snap.Load().byTenant[e.Tenant]
	callback := ""
	if e.Job != nil && e.Job.CallbackURL != "" && errand.TerminalEvent(e.Type) {
		callback = e.Job.CallbackURL
	}
	if len(targets) == 0 && callback == "" {
		return nil
	}
	var payload []byte
	add := func(d *errand.Delivery) error {
		if payload == nil {
			var err error
			if payload, err = Payload(e); err != nil {
				return err
			}
		}
		now := o.now()
		next := now.Add(o.claim)
		d.ID, d.Tenant, d.EventType, d.Status = o.ids.New("msg", now), e.Tenant, e.Type, errand.DeliveryPending
		d.CreatedAt, d.NextAttemptAt, d.Payload, d.TraceParent = now, &next, payload, e.TraceParent
		if e.Job != nil {
			d.JobID, d.TraceParent = e.Job.ID, e.Job.TraceParent // the delivery continues the job's trace
		}
		return tx.InsertDelivery(d)
	}
	for _, t := range targets {
		if t.f.Match(e) {
			if err := add(&errand.Delivery{EndpointID: t.ep.ID}); err != nil {
				return err
			}
		}
	}
	if callback != "" {
		return add(&errand.Delivery{URL: callback})
	}
	return nil
}

// body is a delivery's request body, as Standard Webhooks has it.
type body struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// channelData is the data of a channel event's delivery.
type channelData struct {
	Channel string          `json:"channel"`
	Cursor  string          `json:"cursor"`
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data"`
}

// Payload is the body delivered for e: {type, timestamp, data}. A job event's
// data is the job as of the event; a channel event's data names the channel and
// carries the published data; an endpoint event's data is the endpoint.
func Payload(e *errand.Event) ([]byte, error) {
	data := e.Data
	switch {
	case e.Job != nil && !errand.TerminalEvent(e.Type): // terminal events already carry the job
		b, err := json.Marshal(e.Job)
		if err != nil {
			return nil, fmt.Errorf("encode job for delivery: %w", err)
		}
		data = b
	case !isJobStream(e.Stream) && e.Stream != errand.StreamWebhooks: // a channel event
		b, err := json.Marshal(channelData{Channel: e.Stream, Cursor: e.Cursor(), Type: e.Type, Data: e.Data})
		if err != nil {
			return nil, fmt.Errorf("encode channel event for delivery: %w", err)
		}
		data = b
	}
	return json.Marshal(body{Type: e.Type, Timestamp: e.Time, Data: data})
}

// isJobStream reports whether a stream is a job's (its name is the job id).
func isJobStream(s string) bool { return strings.HasPrefix(s, "job_") }
