// Package event fans committed events out to in-process subscribers.
//
// The hub is fed by the store's commit notifications (storage.Notifier), never by
// the code paths that write events, so every subscriber sees exactly the committed
// events, in log order. Each subscription has a buffer bounded in events and in
// bytes: a subscriber that falls behind is cut off (its Reset reports true) and
// never slows the publisher or other subscribers; it resumes from its last cursor
// by reading the log.
package event

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// Hub is the in-process fan-out of committed events. The zero value is not usable;
// call NewHub.
type Hub struct {
	mu      sync.RWMutex
	streams map[string]map[*Subscription]struct{}
	resets  atomic.Uint64 // subscriptions cut off for falling behind
}

var _ storage.Notifier = (*Hub)(nil)

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{streams: make(map[string]map[*Subscription]struct{})}
}

// Subscription receives the events of one stream.
type Subscription struct {
	hub      *Hub
	stream   string
	c        chan *Frame
	maxBytes int64        // of event data waiting in c; 0: no bound
	queued   atomic.Int64 // bytes waiting in c (see Received)
	reset    atomic.Bool
	once     sync.Once
}

// C delivers events in log order. It is closed when the subscription is closed or
// cut off for falling behind (then Reset reports true).
func (s *Subscription) C() <-chan *Frame { return s.c }

// Reset reports whether the subscription was cut off because its buffer was full.
func (s *Subscription) Reset() bool { return s.reset.Load() }

// Received tells the subscription that d was taken from C, so its bytes no
// longer count against the buffer. A reader that does not call it is cut off
// sooner, never later.
func (s *Subscription) Received(d *Frame) { s.queued.Add(-d.Bytes()) }

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() { s.hub.remove(s) }

// Subscribe starts receiving the committed events of stream. buffer is how many
// undelivered events may wait before the subscription is cut off (at least 1),
// maxBytes how many bytes of their data (errand.Event.Bytes; 0 sets no bound):
// one event always fits in an empty buffer, whatever its size.
func (h *Hub) Subscribe(stream string, buffer int, maxBytes int64) *Subscription {
	s := &Subscription{hub: h, stream: stream, c: make(chan *Frame, max(buffer, 1)), maxBytes: maxBytes}
	h.mu.Lock()
	subs := h.streams[stream]
	if subs == nil {
		subs = make(map[*Subscription]struct{})
		h.streams[stream] = subs
	}
	subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *Hub) remove(s *Subscription) {
	s.once.Do(func() {
		h.mu.Lock()
		if subs := h.streams[s.stream]; subs != nil {
			delete(subs, s)
			if len(subs) == 0 {
				delete(h.streams, s.stream)
			}
		}
		h.mu.Unlock()
		close(s.c)
	})
}

// AllJobs is the stream name that subscribes to every job's events, of every
// tenant (the dashboard's live job list filters them by tenant). It holds a
// control character, so it is never the name of a job or channel stream.
const AllJobs = "\x00jobs"

// Committed delivers a commit's events to the subscribers of their streams
// (and a job's events to the subscribers of AllJobs).
func (h *Hub) Committed(c *storage.Commit) {
	if len(c.Events) == 0 {
		return
	}
	var overflow []*Subscription
	h.mu.RLock()
	for _, e := range c.Events {
		subs, all := h.streams[e.Stream], h.streams[AllJobs]
		if !strings.HasPrefix(e.Stream, "job_") {
			all = nil
		}
		if len(subs) == 0 && len(all) == 0 {
			continue
		}
		d := &Frame{Event: e} // one per event, shared by every subscriber
		size := e.Bytes()
		overflow = deliver(subs, d, size, overflow)
		overflow = deliver(all, d, size, overflow)
	}
	h.mu.RUnlock()
	h.resets.Add(uint64(len(overflow)))
	for _, s := range overflow {
		s.Close()
	}
}

// deliver queues d for each of subs, and returns overflow with those whose
// buffer is full added.
func deliver(subs map[*Subscription]struct{}, d *Frame, size int64, overflow []*Subscription) []*Subscription {
	for s := range subs {
		if s.reset.Load() {
			continue
		}
		if !s.fits(size) {
			s.reset.Store(true)
			overflow = append(overflow, s)
			continue
		}
		select {
		case s.c <- d:
			s.queued.Add(size)
		default:
			s.reset.Store(true)
			overflow = append(overflow, s)
		}
	}
	return overflow
}

// fits reports whether an event of size bytes may wait in the buffer.
func (s *Subscription) fits(size int64) bool {
	return s.maxBytes <= 0 || len(s.c) == 0 || s.queued.Load()+size <= s.maxBytes
}

// Resets returns how many subscriptions the hub has cut off for falling
// behind since it was made (for metrics).
func (h *Hub) Resets() uint64 { return h.resets.Load() }

// Subscribers returns how many subscriptions are open (for metrics and tests).
func (h *Hub) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, subs := range h.streams {
		n += len(subs)
	}
	return n
}

// Frame is a committed event on its way to subscribers (of an SSE or WebSocket
// stream; not a webhook delivery, which is errand.Delivery). Its wire forms are
// encoded once, however many subscribers it reaches.
type Frame struct {
	*errand.Event
	jsonOnce, sseOnce sync.Once
	json, sse         []byte
	mu                sync.Mutex
	memo              []*memo
}

type memo struct {
	key  string
	once sync.Once
	b    []byte
}

// Memo returns what make returns for key, made once for this frame however
// many subscribers ask: a transport's encoding of the event for one query
// (GraphQL subscribers with the same document share theirs). When make
// returns nil, Memo returns nil (to this caller and those waiting on it).
func (f *Frame) Memo(key string, make func() []byte) []byte {
	f.mu.Lock()
	var m *memo
	for _, x := range f.memo {
		if x.key == key {
			m = x
			break
		}
	}
	if m == nil {
		m = &memo{key: key}
		f.memo = append(f.memo, m)
	}
	f.mu.Unlock()
	m.once.Do(func() { m.b = make() })
	return m.b
}

// NewFrame wraps an event read from the store.
func NewFrame(e *errand.Event) *Frame { return &Frame{Event: e} }

// JSON is the event as JSON, on one line.
func (f *Frame) JSON() []byte {
	f.jsonOnce.Do(func() { f.json, _ = json.Marshal(f.Event) })
	return f.json
}

// SSE is the event as a Server-Sent Events frame: id, event and data lines.
func (f *Frame) SSE() []byte {
	f.sseOnce.Do(func() {
		j := f.JSON()
		b := make([]byte, 0, len(j)+len(f.Type)+40)
		b = append(b, "id: "...)
		b = strconv.AppendInt(b, f.Seq, 10)
		b = append(b, "\nevent: "...)
		b = append(b, f.Type...)
		b = append(b, "\ndata: "...)
		b = append(b, j...)
		f.sse = append(b, "\n\n"...)
	})
	return f.sse
}
