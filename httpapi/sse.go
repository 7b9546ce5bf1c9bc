package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/event"
)

// Server-Sent Events settings.
const (
	// ssePing is how often an idle stream gets a comment line (keeps proxies and
	// load balancers from closing it).
	ssePing = 15 * time.Second
	// sseRetry is the reconnection delay the client is told, in milliseconds.
	sseRetry = 2000
	// sseWriteTimeout drops a client that stops reading for this long.
	sseWriteTimeout = 30 * time.Second
	// sseBuffer is how many events wait for a stream before it falls back to
	// reading the store (small: idle streams are many, and catching up is free).
	sseBuffer = 64
)

// wantsSSE reports whether the request asks for an event stream (as EventSource does).
func wantsSSE(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

// resumeCursor is where a stream resumes: Last-Event-ID wins over ?after=.
func resumeCursor(r *http.Request) (int64, error) {
	return errand.ResumeCursor(r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after"))
}

// frames is where a stream's frames go: buffer collects, flush sends.
type frames interface {
	buffer(b []byte) error
	flush() error
}

// sseWriter writes frames through the ResponseWriter (HTTP/2, or when the
// connection cannot be taken over).
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s *sseWriter) buffer(b []byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	_, err := s.w.Write(b)
	return err
}

func (s *sseWriter) flush() error { return s.rc.Flush() }

// connWriter writes frames straight to a taken-over HTTP/1.1 connection,
// holding a buffer only while frames wait for a flush.
type connWriter struct {
	c   net.Conn
	buf []byte
}

func (s *connWriter) buffer(b []byte) error {
	s.buf = append(s.buf, b...)
	if len(s.buf) >= 32<<10 {
		return s.flush()
	}
	return nil
}

func (s *connWriter) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	_ = s.c.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	_, err := s.c.Write(s.buf)
	if cap(s.buf) > 64<<10 {
		s.buf = nil // do not keep a burst's buffer on an idle stream
	} else {
		s.buf = s.buf[:0]
	}
	return err
}

// hijackedHead is the response head of a taken-over stream: every header the
// middleware set (request id, security headers, CORS), no chunking, and the
// body ends when the connection does.
func hijackedHead(h http.Header) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	h.Set("Connection", "close")
	_ = h.Write(&b)
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "retry: %d\n\n", sseRetry)
	return b.Bytes()
}

// serveSSE streams f to the client until it ends or the client goes away.
//
// An HTTP/1.1 stream is taken over from net/http (hijacked) and handed to a
// goroutine of its own, so the handler returns and net/http frees its
// per-connection buffers and goroutines: an idle stream then costs one small
// goroutine and its socket. It ends with streams (the server's shutdown), or
// when the principal's credential ends (an `event: error` frame with the
// unauthorized problem says so). A client that left is noticed on the next
// write, at the latest the next ping.
func serveSSE(w http.ResponseWriter, r *http.Request, acc *access, f *event.Follow, streams context.Context) {
	release, err := acc.openStream(r, transportSSE)
	if err != nil {
		acc.fail(w, r, err)
		return
	}
	acc.meter.Subscriptions(transportSSE, 1) // a stream is one subscription
	free := release
	release = func() {
		acc.meter.Subscriptions(transportSSE, -1)
		free()
	}
	f.Buffer = sseBuffer
	if f.Live {
		f.Listen() // before the head: a client that has it misses nothing published after
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx and friends: do not buffer
	if r.ProtoMajor == 1 && streams != nil {
		if conn, brw, err := rc.Hijack(); err == nil {
			_ = brw // nothing more will be read: an event stream's client sends nothing
			if _, err := conn.Write(hijackedHead(h)); err != nil {
				conn.Close()
				f.Close()
				release()
				return
			}
			ctx, unbind := acc.bindStream(streams, r)
			go func() {
				defer release()
				defer conn.Close()
				defer unbind()
				stream(ctx, acc, f, &connWriter{c: conn}, requestID(r.Context()))
			}()
			return
		}
	}
	defer release()
	_ = rc.SetReadDeadline(time.Time{}) // the server's read timeout must not end a stream
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: rc}
	if sw.buffer(fmt.Appendf(nil, "retry: %d\n\n", sseRetry)) != nil || sw.flush() != nil {
		f.Close()
		return
	}
	ctx, unbind := acc.bindStream(r.Context(), r)
	defer unbind()
	stream(ctx, acc, f, sw, requestID(r.Context()))
}

// stream runs f into out, with pings while idle and a reset frame when the
// cursor is older than what is kept.
func stream(ctx context.Context, acc *access, f *event.Follow, out frames, reqID string) {
	write := func(b []byte) error {
		if err := out.buffer(b); err != nil {
			return err
		}
		return out.flush()
	}
	f.Send = func(d *event.Frame) error { return out.buffer(d.SSE()) }
	f.Flush = out.flush
	f.Idle, f.OnIdle = ssePing, func() error { return write([]byte(": ping\n\n")) }
	for {
		err := f.Run(ctx)
		reason, resume, ok := resetFor(err)
		if !ok {
			if e := credentialEnded(ctx); e != nil {
				// The key was revoked or the token expired: say so, then close.
				_ = write(endFrame(e))
				return
			}
			if err != nil && ctx.Err() == nil && !isClosed(err) {
				acc.log.Warn("event stream ended", "stream", f.Stream, "err", err, "request_id", reqID)
			}
			return
		}
		acc.meter.StreamReset(transportSSE)
		// The client cannot resume where it asked (retention deleted events it
		// never saw, or its cursor is not from this log): say so, then go on.
		if write(fmt.Appendf(nil, "event: reset\ndata: {\"reason\":\"%s\",\"resume_after\":\"%d\"}\n\n", reason, resume)) != nil {
			return
		}
		f.After = resume
	}
}

// resetFor tells whether err from Follow.Run asks the client to resume
// elsewhere: why, and after which cursor.
func resetFor(err error) (reason string, resume int64, ok bool) {
	var old *event.CursorTooOld
	var ahead *event.CursorAhead
	switch {
	case errors.As(err, &old):
		return "cursor_too_old", old.Floor, true
	case errors.As(err, &ahead):
		return "cursor_ahead", ahead.Head, true
	}
	return "", 0, false
}

// endFrame is the last frame of a stream whose credential ended: an error
// event holding the problem (code unauthorized). EventSource hands it to
// "error" listeners as a MessageEvent with data; its reconnection is then
// refused with 401, which ends it.
func endFrame(e *errand.Error) []byte {
	b, _ := json.Marshal(Problem(e))
	return fmt.Appendf(nil, "event: error\ndata: %s\n\n", b)
}

// isClosed reports whether err is the client having gone away.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrDeadlineExceeded)
}

// terminal reports whether e ends a job's stream.
func terminal(e *errand.Event) bool {
	return errand.TerminalEvent(e.Type)
}
