package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
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

// stream is a live page's Server-Sent Events answer.
type stream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// openStream starts an event stream for r's page: it counts against the
// principal's streams (http.max_streams_per_principal) and ends when the
// request does, the server stops, or the principal's credential ends.
func (d *Dashboard) openStream(w http.ResponseWriter, r *http.Request, wh *who) (*stream, context.Context, func(), error) {
	release, err := d.access.OpenStream(wh.p)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := d.access.Bind(r.Context(), wh.p)
	if base := d.access.Streams(); base != nil {
		stop := context.AfterFunc(base, cancel)
		prev := cancel
		cancel = func() { stop(); prev() }
	}
	s := &stream{w: w, rc: http.NewResponseController(w)}
	_ = s.rc.SetReadDeadline(time.Time{}) // the server's read timeout is for requests, not for streams
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 2000\n\n")
	_ = s.rc.Flush()
	return s, ctx, func() { cancel(); release() }, nil
}

// send writes one event (data as JSON on one line) and flushes it.
func (s *stream) send(typ, id string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	var buf bytes.Buffer
	if id != "" {
		buf.WriteString("id: " + id + "\n")
	}
	buf.WriteString("event: " + typ + "\ndata: ")
	buf.Write(b)
	buf.WriteString("\n\n")
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		return err
	}
	return s.rc.Flush()
}

// ended tells the page to reload when its stream ended with the principal's
// credential (a revoked key, an expired token): the reload signs in again.
func (s *stream) ended(ctx context.Context) {
	var e *errand.Error
	if errors.As(context.Cause(ctx), &e) && e.Code == errand.EUNAUTHORIZED {
		_ = s.send("reload", "", struct{}{})
	}
}

func (s *stream) ping() error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprint(s.w, ": ping\n\n"); err != nil {
		return err
	}
	return s.rc.Flush()
}

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
	defer sub.Close()
	s, ctx, done, err := d.openStream(w, r, wh)
	if err != nil {
		return err
	}
	defer done()
	ping := time.NewTicker(d.c.Ping)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			s.ended(ctx)
			return nil
		case <-ping.C:
			if s.ping() != nil {
				return nil
			}
		case fr, ok := <-sub.C():
			if !ok { // fell behind: the page reloads its list
				_ = s.send("reload", "", struct{}{})
				return nil
			}
			sub.Received(fr)
			if fr.Event.Tenant != wh.p.Tenant {
				continue
			}
			if err := d.sendRow(ctx, s, wh, f, fr.Event.Stream); err != nil {
				return nil
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
	Job  *errand.Job
	P    *errand.Principal
	CSRF string
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
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("after")
	}
	seq, err := errand.ParseCursor(after)
	if err != nil {
		return err
	}
	j, err := d.d.Jobs.Get(r.Context(), wh.p, id)
	if err != nil {
		return err
	}
	sub := d.d.Hub.Subscribe(j.ID, liveBuffer, liveBytes)
	defer sub.Close()
	past, err := d.d.Jobs.Events(r.Context(), wh.p, id, errand.FormatCursor(seq), 1000)
	if err != nil {
		return err
	}
	if j.Status.Terminal() && len(past) == 0 {
		w.WriteHeader(http.StatusNoContent) // nothing more will come: EventSource stops
		return nil
	}
	s, ctx, done, err := d.openStream(w, r, wh)
	if err != nil {
		return err
	}
	defer done()
	for _, e := range past {
		if end, err := d.sendJobEvent(ctx, s, wh, e); end || err != nil {
			return nil
		}
		seq = e.Seq
	}
	ping := time.NewTicker(d.c.Ping)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			s.ended(ctx)
			return nil
		case <-ping.C:
			if s.ping() != nil {
				return nil
			}
		case fr, ok := <-sub.C():
			if !ok {
				_ = s.send("reload", "", struct{}{})
				return nil
			}
			sub.Received(fr)
			if fr.Event.Seq <= seq || fr.Event.Tenant != wh.p.Tenant {
				continue
			}
			seq = fr.Event.Seq
			if end, err := d.sendJobEvent(ctx, s, wh, fr.Event); end || err != nil {
				return nil
			}
		}
	}
}

// sendJobEvent sends e with the job's panel; end is true after a terminal event.
func (d *Dashboard) sendJobEvent(ctx context.Context, s *stream, wh *who, e *errand.Event) (end bool, err error) {
	j, err := d.d.Jobs.Get(ctx, wh.p, e.Stream)
	if err != nil {
		return true, err
	}
	panel, err := d.fragment("panel", panelData{Job: j, P: &wh.p, CSRF: wh.s.csrf})
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
