package bridge

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// link keeps one connection to a bridge's broker: it dials, hands the
// connection to the routes while it lives, and dials again (with backoff)
// once it is lost. The routes wait on it.
type link struct {
	dial func(ctx context.Context) (Conn, error)
	log  *slog.Logger
	now  func() time.Time

	mu    sync.Mutex
	conn  Conn
	up    chan struct{} // closed while conn is set
	state string        // StateConnecting, StateUp, StateDown
	since time.Time
	last  errorNote
}

// The states of a bridge's connection.
const (
	StateConnecting = "connecting" // dialling for the first time
	StateUp         = "up"
	StateDown       = "down" // lost, or dialling failed: dialling again
)

func newLink(dial func(ctx context.Context) (Conn, error), log *slog.Logger, now func() time.Time) *link {
	return &link{dial: dial, log: log, now: now, up: make(chan struct{}), state: StateConnecting, since: now()}
}

// backoff is the delay before the nth retry (from 0): 100 ms doubling to 5 s.
func backoff(n int) time.Duration {
	return min(100*time.Millisecond<<min(n, 6), 5*time.Second)
}

// run dials and redials until ctx ends.
func (l *link) run(ctx context.Context) {
	for failures := 0; ctx.Err() == nil; {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := l.dial(dctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.setDown(err, failures == 0)
			failures++
			sleep(ctx, backoff(failures))
			continue
		}
		failures = 0
		l.setUp(c)
		select {
		case <-ctx.Done():
		case <-c.Lost():
		}
		l.setLost(c, ctx.Err() == nil)
		_ = c.Close()
	}
}

func (l *link) setUp(c Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conn, l.state, l.since = c, StateUp, l.now()
	close(l.up)
	l.log.Info("bridge connected")
}

func (l *link) setLost(c Conn, logIt bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == c {
		l.conn, l.up = nil, make(chan struct{})
		l.state, l.since = StateDown, l.now()
		if logIt {
			l.log.Warn("bridge connection lost; dialling again")
		}
	}
}

func (l *link) setDown(err error, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == StateUp || first {
		l.log.Warn("bridge cannot connect; retrying", "err", err)
	}
	if l.state != StateConnecting {
		l.state = StateDown
	}
	if l.state == StateConnecting && !first {
		l.state, l.since = StateDown, l.now()
	}
	l.last.set(err, l.now())
}

// get waits for the connection (or ctx).
func (l *link) get(ctx context.Context) (Conn, error) {
	for {
		l.mu.Lock()
		c, up := l.conn, l.up
		l.mu.Unlock()
		if c != nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-up:
		}
	}
}

// status reads the connection's state.
func (l *link) status() (state string, since time.Time, last errorNote) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.since, l.last
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
