package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/event"
)

// liveBuffer is how many events wait for one live page before it is told
// to reload (it fell behind); liveBytes bounds their data.
const (
	liveBuffer = 64
	liveBytes  = 256 << 10
)

// stream is a live page's Server-Sent Events answer. Over HTTP/1.1 it takes
// the connection over from net/http (its buffers and reading goroutine are
// freed) and runs on a goroutine of its own, writing to the connection
// directly: an open dashboard then costs a goroutine, a subscription and the
// socket. Over HTTP/2 it stays on its request.
type stream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	conn net.Conn // set once taken over
}

// serveLive opens the stream of a live page and runs fn on it, on the
// stream's own goroutine; sub is closed when fn returns (or at once, when the
// stream cannot open).
func (d *Dashboard) serveLive(w http.ResponseWriter, r *http.Request, wh *who, sub *event.Subscription, fn func(ctx context.Context, s *stream)) error {
	s, ctx, done, err := d.openStream(w, r, wh)
	if err != nil {
		sub.Close()
		return err
	}
	s.run(func() {
		defer done()
		defer sub.Close()
		fn(ctx, s)
	})
	return nil
}

// openStream starts an event stream for r's page: it counts against the
// principal's streams (http.max_streams_per_principal) and its context ends
// when the client goes away, the server stops, or the principal's credential
// ends. The caller runs the stream with run.
func (d *Dashboard) openStream(w http.ResponseWriter, r *http.Request, wh *who) (*stream, context.Context, func(), error) {
	release, err := d.access.OpenStream(wh.p)
	if err != nil {
		return nil, nil, nil, err
	}
	s := &stream{w: w, rc: http.NewResponseController(w)}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	parent := r.Context()
	if r.ProtoMajor == 1 {
		if conn, _, err := s.rc.Hijack(); err == nil {
			s.conn = conn
			parent = context.WithoutCancel(r.Context()) // r's ends when the handler returns
			h.Set("Connection", "close")
			var head bytes.Buffer
			head.WriteString("HTTP/1.1 200 OK\r\n")
			_ = h.Write(&head)
			head.WriteString("\r\nretry: 2000\n\n")
			_ = conn.SetDeadline(time.Time{})
			if err := s.write(head.Bytes()); err != nil {
				conn.Close()
				release()
				return nil, nil, nil, err
			}
		}
	}
	ctx, cancel := d.access.Bind(parent, wh.p)
	if base := d.access.Streams(); base != nil {
		stop := context.AfterFunc(base, cancel)
		prev := cancel
		cancel = func() { stop(); prev() }
	}
	if s.conn == nil {
		_ = s.rc.SetReadDeadline(time.Time{}) // the server's read timeout is for requests, not for streams
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprint(w, "retry: 2000\n\n")
		_ = s.rc.Flush()
	}
	return s, ctx, func() {
		cancel()
		release()
		if s.conn != nil {
			s.conn.Close()
		}
	}, nil
}

// run runs the stream's loop: on a goroutine of its own when the connection
// was taken over (the handler returns), else on the request's.
func (s *stream) run(fn func()) {
	if s.conn != nil {
		go fn()
		return
	}
	fn()
}

// write sends b to the client, within 30 seconds.
func (s *stream) write(b []byte) error {
	if s.conn != nil {
		_ = s.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := s.conn.Write(b)
		return err
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// send writes one event (data as JSON on one line).
func (s *stream) send(typ, id string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if id != "" {
		buf.WriteString("id: " + id + "\n")
	}
	buf.WriteString("event: " + typ + "\ndata: ")
	buf.Write(b)
	buf.WriteString("\n\n")
	return s.write(buf.Bytes())
}

// ended tells the page to reload when its stream ended with the principal's
// credential (a revoked key, an expired token): the reload signs in again.
func (s *stream) ended(ctx context.Context) {
	var e *errand.Error
	if errors.As(context.Cause(ctx), &e) && e.Code == errand.EUNAUTHORIZED {
		_ = s.send("reload", "", struct{}{})
	}
}

func (s *stream) ping() error { return s.write([]byte(": ping\n\n")) }

// fragment renders a partial template of the page set to HTML.
func (d *Dashboard) fragment(name string, data any) (template.HTML, error) {
	var buf bytes.Buffer
	if err := d.pages["jobs"].ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil // html/template escaped every value in it
}

// rowEvent is a live job list's update: the job's row, and whether it still
// belongs in the list (a job whose status left the filter goes away).
type rowEvent struct {
	ID    string        `json:"id"`
	Match bool          `json:"match"`
	HTML  template.HTML `json:"html"`
}

// handleJobsLive streams the rows of the jobs the list's filter shows, as they
// are created and change: every job event of the principal's tenant, read
// back through the job service (so only jobs the principal may read).
func (d *Dashboard) handleJobsLive(w http.ResponseWriter, r *http.Request, wh *who) error {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	sub := d.d.Hub.Subscribe(event.AllJobs, liveBuffer, liveBytes)
	return d.serveLive(w, r, wh, sub, func(ctx context.Context, s *stream) { d.followJobs(ctx, s, sub, wh, f) })
}

// followJobs sends the rows of the jobs events in sub are about.
func (d *Dashboard) followJobs(ctx context.Context, s *stream, sub *event.Subscription, wh *who, f jobFilter) {
	d.follow(ctx, s, sub, wh, nil, -1, func(e *errand.Event) bool {
		return d.sendRow(ctx, s, wh, f, e.Stream) != nil
	})
}

// follow sends past, then the events sub delivers of the principal's tenant
// after the last of them (or after seq; -1: every one, in the order they
// come), through each until ctx ends, the client goes, each says to stop, or
// sub fell behind (the page reloads). Pings keep the stream open meanwhile.
func (d *Dashboard) follow(ctx context.Context, s *stream, sub *event.Subscription, wh *who, past []*errand.Event, seq int64, each func(*errand.Event) (stop bool)) {
	for _, e := range past {
		if each(e) {
			return
		}
		seq = e.Seq
	}
	ping := time.NewTicker(d.c.Ping)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			s.ended(ctx)
			return
		case <-ping.C:
			if s.ping() != nil {
				return
			}
		case fr, ok := <-sub.C():
			if !ok {
				_ = s.send("reload", "", struct{}{})
				return
			}
			sub.Received(fr)
			if (seq >= 0 && fr.Event.Seq <= seq) || fr.Event.Tenant != wh.p.Tenant {
				continue
			}
			if seq >= 0 {
				seq = fr.Event.Seq
			}
			if each(fr.Event) {
				return
			}
		}
	}
}

// sendRow sends the row of job id, when the principal may read it.
func (d *Dashboard) sendRow(ctx context.Context, s *stream, wh *who, f jobFilter, id string) error {
	j, err := d.d.Jobs.Get(ctx, wh.p, id)
	if err != nil {
		return nil // another owner's job (or one deleted since): not the page's
	}
	ok, _ := f.matches(j)
	html, err := d.fragment("row", j)
	if err != nil {
		return err
	}
	return s.send("row", "", rowEvent{ID: j.ID, Match: ok, HTML: html})
}

// panelData is a job's panel: the job and what the principal may do to it.
type panelData struct {
	Job      *errand.Job
	Attempts []attempt
	P        *errand.Principal
	CSRF     string
}

// jobEvent is a live job page's update: the panel and the new timeline entry.
type jobEvent struct {
	Panel    template.HTML `json:"panel"`
	Entry    template.HTML `json:"entry"`
	Terminal bool          `json:"terminal"`
}

// handleJobLive streams a job's events after ?after= (or Last-Event-ID): for
// each, the job's panel as it now is and the event's timeline entry; it ends
// after the terminal event.
func (d *Dashboard) handleJobLive(w http.ResponseWriter, r *http.Request, wh *who) error {
	id := r.PathValue("id")
	seq, err := errand.ResumeCursor(r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after"))
	if err != nil {
		return err
	}
	j, err := d.d.Jobs.Get(r.Context(), wh.p, id)
	if err != nil {
		return err
	}
	sub := d.d.Hub.Subscribe(j.ID, liveBuffer, liveBytes)
	past, err := d.d.Jobs.Events(r.Context(), wh.p, id, errand.FormatCursor(seq), 1000)
	if err != nil {
		sub.Close()
		return err
	}
	if j.Status.Terminal() && len(past) == 0 {
		sub.Close()
		w.WriteHeader(http.StatusNoContent) // nothing more will come: EventSource stops
		return nil
	}
	return d.serveLive(w, r, wh, sub, func(ctx context.Context, s *stream) { d.followJob(ctx, s, sub, wh, past, seq) })
}

// followJob sends past, then the events of sub after seq, until the terminal one.
func (d *Dashboard) followJob(ctx context.Context, s *stream, sub *event.Subscription, wh *who, past []*errand.Event, seq int64) {
	send := func(e *errand.Event) bool {
		end, err := d.sendJobEvent(ctx, s, wh, e)
		return end || err != nil
	}
	d.follow(ctx, s, sub, wh, past, seq, send)
}

// sendJobEvent sends e with the job's panel; end is true after a terminal event.
func (d *Dashboard) sendJobEvent(ctx context.Context, s *stream, wh *who, e *errand.Event) (end bool, err error) {
	j, err := d.d.Jobs.Get(ctx, wh.p, e.Stream)
	if err != nil {
		return true, err
	}
	events, err := d.d.Jobs.Events(ctx, wh.p, j.ID, "", 1000) // the attempts are told by them all
	if err != nil {
		return true, err
	}
	panel, err := d.fragment("panel", panelData{Job: j, Attempts: attemptsOf(events), P: &wh.p, CSRF: wh.s.csrf})
	if err != nil {
		return true, err
	}
	entry, err := d.fragment("event", e)
	if err != nil {
		return true, err
	}
	terminal := isTerminalEvent(e.Type)
	return terminal, s.send("job", strconv.FormatInt(e.Seq, 10), jobEvent{Panel: panel, Entry: entry, Terminal: terminal})
}

func isTerminalEvent(typ string) bool {
	return typ == errand.EventJobSucceeded || typ == errand.EventJobFailed || typ == errand.EventJobCanceled
}
