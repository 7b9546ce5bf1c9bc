package bridge

import (
	"sync"
	"sync/atomic"
	"time"
)

// Status is what GET /v1/bridges shows of one bridge (and what /readyz and,
// later, the metrics read).
type Status struct {
	Name   string `json:"name"`
	Broker string `json:"broker"`
	// URL is the broker's, without its password.
	URL    string `json:"url"`
	Tenant string `json:"tenant"`
	// State is the connection's: connecting, up or down.
	State string    `json:"state"`
	Since time.Time `json:"since"`
	// LastError is the last failure to connect, with its time.
	LastError   string        `json:"last_error,omitempty"`
	LastErrorAt *time.Time    `json:"last_error_at,omitempty"`
	Publish     []RouteStatus `json:"publish"`
	Subscribe   []RouteStatus `json:"subscribe"`
	// Replies is the route that sends jobs' results to reply addresses
	// (present when a subscribe route submits jobs).
	Replies *RouteStatus `json:"replies,omitempty"`
}

// RouteStatus is one route's state and counters (counted since this node started).
type RouteStatus struct {
	Name   string   `json:"name"`
	Events []string `json:"events,omitempty"`
	From   string   `json:"from,omitempty"`
	To     string   `json:"to"`
	// Role, for a publish route, says whether this node runs it: leader (it
	// does) or standby (another node does; this one takes over if it dies).
	Role string `json:"role,omitempty"`
	// Cursor is the log position the route has published up to (this node's
	// view), and Lag how many log positions the log's head is past it.
	Cursor *int64 `json:"cursor,omitempty"`
	Lag    *int64 `json:"lag,omitempty"`
	// MessagesOut (publish, replies) or MessagesIn (subscribe) counts the
	// messages the broker confirmed or errand committed.
	MessagesOut uint64 `json:"messages_out,omitempty"`
	MessagesIn  uint64 `json:"messages_in,omitempty"`
	// Duplicates are redeliveries recognised and not taken again; Invalid are
	// messages refused (too large, not valid for the operation or channel),
	// answered on their reply address when they had one; Dropped are replies
	// given up after repeated failures.
	Duplicates uint64 `json:"duplicates,omitempty"`
	Invalid    uint64 `json:"invalid,omitempty"`
	Dropped    uint64 `json:"dropped,omitempty"`
	// Errors counts failures (a publish not confirmed, a commit that failed),
	// each retried.
	Errors        uint64     `json:"errors"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
	LastInvalid   string     `json:"last_invalid,omitempty"`
	LastMessageAt *time.Time `json:"last_message_at,omitempty"`
}

// errorNote is the last error of something, with its time.
type errorNote struct {
	msg string
	at  time.Time
}

func (n *errorNote) set(err error, at time.Time) { n.msg, n.at = err.Error(), at }

func (n errorNote) fields() (string, *time.Time) {
	if n.msg == "" {
		return "", nil
	}
	at := n.at
	return n.msg, &at
}

// counters are a route's, updated by its goroutine and read by Status.
type counters struct {
	messages, duplicates, invalid, dropped, errors atomic.Uint64
	cursor                                         atomic.Int64
	hasCursor, leading                             atomic.Bool

	mu          sync.Mutex
	lastErr     errorNote
	lastInvalid errorNote
	lastAt      time.Time
}

func (c *counters) fail(err error, at time.Time) {
	c.errors.Add(1)
	c.mu.Lock()
	c.lastErr.set(err, at)
	c.mu.Unlock()
}

func (c *counters) refused(msg string, at time.Time) {
	c.invalid.Add(1)
	c.mu.Lock()
	c.lastInvalid = errorNote{msg, at}
	c.mu.Unlock()
}

func (c *counters) done(n int, at time.Time) {
	if n == 0 {
		return
	}
	c.messages.Add(uint64(n))
	c.mu.Lock()
	c.lastAt = at
	c.mu.Unlock()
}

func (c *counters) moved(seq int64) {
	c.cursor.Store(seq)
	c.hasCursor.Store(true)
}

// fill writes the counters into s; head is the log's head as this node knows it.
func (c *counters) fill(s *RouteStatus, out bool, head int64) {
	n := c.messages.Load()
	if out {
		s.MessagesOut = n
	} else {
		s.MessagesIn = n
	}
	s.Duplicates, s.Invalid, s.Dropped, s.Errors = c.duplicates.Load(), c.invalid.Load(), c.dropped.Load(), c.errors.Load()
	if c.hasCursor.Load() {
		cur := c.cursor.Load()
		lag := max(head-cur, 0)
		s.Cursor, s.Lag = &cur, &lag
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.LastError, s.LastErrorAt = c.lastErr.fields()
	s.LastInvalid, _ = c.lastInvalid.fields()
	if !c.lastAt.IsZero() {
		at := c.lastAt
		s.LastMessageAt = &at
	}
}
