package httpapi

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/errandhq/errand"
)

// ConnReserve is how many connections a ConnLimit admits past its cap, for
// /healthz and /readyz only: a node full of clients still tells its load
// balancer and its orchestrator that it lives.
const ConnReserve = 16

// ConnLimit caps a server's open connections, so that idle keep-alive
// connections cannot take every file descriptor (after which the node answers
// nothing, health checks included). At the cap, a new connection takes the
// place of the connection idle the longest, which is closed; when none is
// idle, it is admitted to the reserve (health checks only; anything else is
// answered 503 and the connection closed), and past the reserve it is answered
// 503 at once and closed. Accepting never spins: when the process is out of
// descriptors anyway, an idle connection is closed and accepting waits a
// little longer each time.
//
// Wire it as the listener's wrapper (Listener), the server's ConnState and
// ConnContext, and the handler's outermost wrapper (Guard).
type ConnLimit struct {
	max int
	log *slog.Logger

	mu      sync.Mutex
	open    int        // admitted connections counted against max
	reserve int        // reserve connections open
	idle    *list.List // of *limitedConn, idle the longest first

	refusing chan struct{} // slots for refusals in flight
}

// NewConnLimit returns a limit of n connections (at least 1).
func NewConnLimit(n int, log *slog.Logger) *ConnLimit {
	return &ConnLimit{max: max(n, 1), log: log, idle: list.New(), refusing: make(chan struct{}, 64)}
}

// Max is the cap.
func (l *ConnLimit) Max() int { return l.max }

// Open returns the connections admitted (reserve included).
func (l *ConnLimit) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open + l.reserve
}

// limitedConn is an admitted connection.
type limitedConn struct {
	net.Conn
	l       *ConnLimit
	reserve bool
	// Guarded by l.mu:
	counted bool          // still counts against the cap (or the reserve)
	elem    *list.Element // in l.idle while idle
}

// Close releases the connection's place.
func (c *limitedConn) Close() error {
	c.l.release(c)
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP connection, as net/http does before it closes
// one (so that the client reads the answer rather than a reset).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the TCP connection's sendfile path (artifact downloads).
func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}

func (l *ConnLimit) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unidle(c)
	if !c.counted {
		return
	}
	c.counted = false
	if c.reserve {
		l.reserve--
	} else {
		l.open--
	}
}

func (l *ConnLimit) unidle(c *limitedConn) {
	if c.elem != nil {
		l.idle.Remove(c.elem)
		c.elem = nil
	}
}

// admit takes a new connection in: in the place of the longest idle one if
// need be, else into the reserve; nil when there is no room.
func (l *ConnLimit) admit(c net.Conn) *limitedConn {
	l.mu.Lock()
	var victim *limitedConn
	if l.open >= l.max {
		victim = l.shedLocked()
	}
	lc := &limitedConn{Conn: c, l: l, counted: true}
	switch {
	case l.open < l.max:
		l.open++
	case l.reserve < ConnReserve:
		l.reserve++
		lc.reserve = true
	default:
		lc = nil
	}
	l.mu.Unlock()
	if victim != nil {
		victim.Conn.Close() // its server goroutine sees the error and lets go of it
	}
	return lc
}

// shedLocked takes the longest idle connection out of the count and returns
// it for closing (nil when none is idle).
func (l *ConnLimit) shedLocked() *limitedConn {
	e := l.idle.Front()
	if e == nil {
		return nil
	}
	victim := e.Value.(*limitedConn)
	l.unidle(victim)
	if victim.counted {
		victim.counted = false
		if victim.reserve {
			l.reserve--
		} else {
			l.open--
		}
	}
	return victim
}

// ConnState tracks which connections are idle (for http.Server.ConnState).
func (l *ConnLimit) ConnState(c net.Conn, state http.ConnState) {
	lc := unwrapConn(c)
	if lc == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unidle(lc)
	if state == http.StateIdle && lc.counted {
		lc.elem = l.idle.PushBack(lc)
	}
}

type ctxReserve struct{}

// ConnContext marks the requests of reserve connections (for
// http.Server.ConnContext).
func (l *ConnLimit) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if lc := unwrapConn(c); lc != nil && lc.reserve {
		return context.WithValue(ctx, ctxReserve{}, true)
	}
	return ctx
}

// Guard serves health checks on reserve connections and answers anything
// else there 503; every answer on them closes the connection.
func (l *ConnLimit) Guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(ctxReserve{}) == nil {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		writeError(w, r, l.log, &errand.Error{Code: errand.EUNAVAILABLE, RetryAfter: time.Second,
			Message: "errand holds as many connections as it may: try again"})
	})
}

func unwrapConn(c net.Conn) *limitedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, _ := c.(*limitedConn)
	return lc
}

// Listener wraps inner so that every connection it accepts is admitted by l.
// plain says the connections speak HTTP as they come (no TLS underneath):
// only then is a refused one answered 503; otherwise it is closed.
func (l *ConnLimit) Listener(inner net.Listener, plain bool) net.Listener {
	return &limitListener{Listener: inner, l: l, plain: plain}
}

type limitListener struct {
	net.Listener
	l     *ConnLimit
	plain bool
}

// Accept returns the next admitted connection; connections with no room are
// refused on the side.
func (ll *limitListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	var lastLog time.Time
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			if !outOfFiles(err) {
				return nil, err
			}
			// Out of descriptors although under the cap (the cap is more than the
			// limit allows, or the store or outbound calls took many): let go of
			// an idle connection and wait a little, longer each time, never spin.
			ll.l.mu.Lock()
			victim := ll.l.shedLocked()
			ll.l.mu.Unlock()
			if victim != nil {
				victim.Conn.Close()
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if time.Since(lastLog) > 10*time.Second {
				ll.l.log.Warn("out of file descriptors: closing idle connections", "err", err, "open", ll.l.Open(), "max", ll.l.max)
				lastLog = time.Now()
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if lc := ll.l.admit(c); lc != nil {
			return lc, nil
		}
		if !ll.plain {
			c.Close()
			continue
		}
		ll.l.refuse(c)
	}
}

func outOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// refusal is what a connection with no room is told before it is closed.
var refusal = func() []byte {
	body := `{"type":"/docs/problems#unavailable","title":"Service unavailable","status":503,"code":"unavailable",` +
		`"detail":"errand holds as many connections as it may: try again"}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\n" +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// refuse answers a connection 503 and closes it, reading what the client sent
// first (closing a socket with unread data resets it, and the client would not
// see the answer). At most 64 refusals run at once; past that, connections are
// closed without a word.
func (l *ConnLimit) refuse(c net.Conn) {
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		if _, err := c.Write(refusal); err != nil {
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
}
