package graphql

import (
	"net/http"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/errandhq/errand/httpapi"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Event stream settings (as httpapi's SSE).
const (
	ssePing         = 15 * time.Second
	sseWriteTimeout = 30 * time.Second
)

// serveSSE answers an operation as an event stream, the graphql-sse
// protocol's distinct connections mode: POST with a JSON body or GET with
// the parameters in the URL, Accept: text/event-stream. Every result is a
// next event (with the cursor of the event it answers as its id, so an
// EventSource that reconnects resumes with Last-Event-ID), request errors
// too; the stream ends with a complete event.
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, a httpapi.Access) {
	p, err := a.Authenticate(r, true)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="errand"`)
		s.writeHTTPError(w, r, err, false, 0)
		return
	}
	var params graphql.RawParams
	if err := readParams(r, &params); err != nil {
		s.writeHTTPError(w, r, err, false, 0)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // the server's read timeout must not end a stream
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	// The head goes with the first flush: a subscription's reader flushes once
	// it follows the log, so a client that sees the head sees what is published
	// from then on.
	w.WriteHeader(http.StatusOK)
	out := &sseResults{w: w, rc: rc}
	c := &caller{p: p, r: r, a: a, lastEventID: r.Header.Get("Last-Event-ID")}
	defer out.complete()
	op, resp := s.prepare(r.Context(), c, &params)
	if resp != nil {
		_ = out.next(payload(resp), 0, 0, true)
		return
	}
	if op.Operation.Operation == ast.Subscription {
		release, err := a.OpenStream(p)
		if err != nil {
			out.fail(endError(err, false, 0))
			return
		}
		defer release()
		m := a.Meter() // a stream is one subscription
		m.StreamOpened(transportSSE)
		m.Subscriptions(transportSSE, 1)
		defer func() { m.StreamClosed(transportSSE); m.Subscriptions(transportSSE, -1) }()
	}
	ctx, unbind := a.Bind(r.Context(), p)
	defer unbind()
	err = s.run(ctx, c, op, out)
	switch {
	case credentialEnded(ctx) != nil:
		out.fail(endError(credentialEnded(ctx), false, 0))
	case err != nil && r.Context().Err() == nil:
		if !isCursorTooOld(err) {
			s.cfg.Log.Warn("graphql event stream ended", "err", err, "request_id", httpapi.RequestID(r.Context()))
		}
		out.fail(endError(err, c.src != nil && c.src.resumable, out.sent))
	}
}

// sseResults writes results as next events.
type sseResults struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	err  error // the first write error: the client is gone
	sent int64 // the cursor of the last event written
}

func (o *sseResults) write(b []byte) error {
	if o.err == nil {
		_ = o.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		_, o.err = o.w.Write(b)
	}
	return o.err
}

func (o *sseResults) next(payload []byte, cursor, _ int64, _ bool) error {
	b := make([]byte, 0, len(payload)+40)
	if cursor > 0 {
		b = strconv.AppendInt(append(b, "id: "...), cursor, 10)
		b = append(b, '\n')
	}
	b = append(b, "event: next\ndata: "...)
	b = append(append(b, payload...), "\n\n"...)
	if err := o.write(b); err != nil {
		return err
	}
	if cursor > 0 {
		o.sent = cursor
	}
	return nil
}

func (o *sseResults) flush() error {
	if o.err == nil {
		o.err = o.rc.Flush()
	}
	return o.err
}

func (o *sseResults) ping() (time.Duration, func() error) {
	return ssePing, func() error {
		if err := o.write([]byte(": ping\n\n")); err != nil {
			return err
		}
		return o.flush()
	}
}

// fail ends the stream with an error as the protocol can say it: a next event
// holding the error (complete follows).
func (o *sseResults) fail(e *gqlerror.Error) {
	_ = o.next(mustJSON(map[string]any{"errors": gqlerror.List{e}}), 0, 0, true)
}

// complete ends the stream; the empty data line makes EventSource dispatch it.
func (o *sseResults) complete() {
	if o.write([]byte("event: complete\ndata:\n\n")) == nil {
		_ = o.flush()
	}
}
