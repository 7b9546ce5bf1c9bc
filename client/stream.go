package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand"
)

// errStop ends a stream from inside its callback without an error.
var errStop = errors.New("stop")

// Subscribe follows a channel over Server-Sent Events after the cursor after,
// calling fn for each event in order: "" follows what is published from now
// on, "0" replays everything the channel keeps first. It reconnects on its own after network errors, resuming with
// Last-Event-ID, so fn sees every event once. A "reset" event (Type "reset") says
// retention deleted events the subscriber never saw. It returns when ctx ends or
// fn returns an error.
func (c *Client) Subscribe(ctx context.Context, channel, after string, fn func(Event) error) error {
	return c.stream(ctx, "/v1/channels/"+url.PathEscape(channel)+"/events", after, fn)
}

// Watch follows a job's events until its terminal event (which fn sees), with
// the same resumption as Subscribe.
func (c *Client) Watch(ctx context.Context, jobID string, fn func(Event) error) error {
	err := c.stream(ctx, "/v1/jobs/"+url.PathEscape(jobID)+"/events", "", func(e Event) error {
		if err := fn(e); err != nil {
			return err
		}
		if errand.TerminalEvent(e.Type) {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// stream reads an SSE endpoint, reconnecting until ctx ends, fn fails, or the
// server answers 204 (a finished job).
func (c *Client) stream(ctx context.Context, path, after string, fn func(Event) error) error {
	delay := 2 * time.Second
	for attempt := 0; ; attempt++ {
		done, retry, err := c.streamOnce(ctx, path, &after, fn)
		var ce *Error
		switch {
		case done:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &ce) && ce.StatusCode < 500:
			return err
		case err != nil && errors.Is(err, errFn):
			return errors.Unwrap(err)
		}
		if retry > 0 {
			delay = retry
		}
		if c.reconnect > 0 {
			delay = c.reconnect
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// errFn wraps an error returned by the caller's function.
var errFn = errors.New("callback")

type fnError struct{ err error }

func (e fnError) Error() string   { return e.err.Error() }
func (e fnError) Unwrap() error   { return e.err }
func (e fnError) Is(t error) bool { return t == errFn }

// streamOnce reads one connection; done is true when the server says there is
// nothing more (204).
func (c *Client) streamOnce(ctx context.Context, path string, after *string, fn func(Event) error) (done bool, retry time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *after != "" {
		req.Header.Set("Last-Event-ID", *after)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return true, 0, nil
	case resp.StatusCode >= 400:
		return false, 0, problemOf(resp)
	}
	return false, retry, readFrames(resp.Body, func(f frame) error {
		if f.retry > 0 {
			retry = f.retry
		}
		if f.data == "" {
			return nil
		}
		var e Event
		if f.event == "reset" {
			e = Event{Type: "reset", Data: json.RawMessage(f.data)}
			var r struct {
				ResumeAfter string `json:"resume_after"`
			}
			if json.Unmarshal([]byte(f.data), &r) == nil && r.ResumeAfter != "" {
				*after = r.ResumeAfter
			}
		} else if err := json.Unmarshal([]byte(f.data), &e); err != nil {
			return fmt.Errorf("event %s: %w", f.id, err)
		}
		if f.id != "" {
			*after = f.id
		}
		if err := fn(e); err != nil {
			return fnError{err}
		}
		return nil
	})
}

// frame is one parsed SSE frame.
type frame struct {
	id, event, data string
	retry           time.Duration
}

// readFrames parses a text/event-stream body.
func readFrames(r io.Reader, each func(frame) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var f frame
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			f.data = strings.Join(data, "\n")
			if err := each(f); err != nil {
				return err
			}
			f, data = frame{}, nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			f.id = value
		case "event":
			f.event = value
		case "data":
			data = append(data, value)
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil {
				f.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF // the server closed the stream: reconnect
}
