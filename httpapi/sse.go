package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
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

// resumeCursor is where a stream resumes: Last-Event-ID (what EventSource sends
// when it reconnects) wins over ?after=.
func resumeCursor(r *http.Request) (int64, error) {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return errand.ParseCursor(strings.TrimSpace(id))
	}
	return errand.ParseCursor(r.URL.Query().Get("after"))
}

// sseWriter writes frames to one client; a mutex orders events and pings.
type sseWriter struct {
	mu sync.Mutex
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s *sseWriter) write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// serveSSE streams f to the client until it ends or the client goes away.
func serveSSE(w http.ResponseWriter, r *http.Request, log *slog.Logger, f *event.Follow) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // the server's read timeout must not end a stream
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx and friends: do not buffer
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: rc}
	if err := sw.write(fmt.Appendf(nil, "retry: %d\n\n", sseRetry)); err != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go ping(ctx, sw, cancel)
	f.Send = func(d *event.Delivery) error { return sw.write(d.SSE()) }
	for {
		err := f.Run(ctx)
		var old *event.CursorTooOld
		if !errors.As(err, &old) {
			if err != nil && ctx.Err() == nil {
				log.Warn("event stream ended", "stream", f.Stream, "err", err, "request_id", requestID(r.Context()))
			}
			return
		}
		// Retention deleted events this client never saw: say so, then go on from what is kept.
		if sw.write(fmt.Appendf(nil, "event: reset\ndata: {\"reason\":\"cursor_too_old\",\"resume_after\":\"%d\"}\n\n", old.Floor)) != nil {
			return
		}
		f.After = old.Floor
	}
}

func ping(ctx context.Context, sw *sseWriter, cancel context.CancelFunc) {
	t := time.NewTicker(ssePing)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if sw.write([]byte(": ping\n\n")) != nil {
				cancel()
				return
			}
		}
	}
}

// terminal reports whether e ends a job's stream.
func terminal(e *errand.Event) bool {
	return e.Type == errand.EventJobSucceeded || e.Type == errand.EventJobFailed || e.Type == errand.EventJobCanceled
}
