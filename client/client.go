// Package client is the Go SDK for errand's HTTP API: submit jobs, read them, wait
// for their results, list, cancel, retry and delete them.
//
//	c := client.New("http://localhost:8080")
//	j, err := c.Submit(ctx, "generate-report", map[string]string{"type": "monthly"}, nil)
//	j, err = c.Wait(ctx, j.ID, time.Minute)
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand"
)

// Client talks to one errand server. It is safe for concurrent use.
type Client struct {
	base      string
	http      *http.Client
	token     string
	reconnect time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient uses hc for requests. Defaults to a client with keep-alives and
// no overall timeout (long polls set their own).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithReconnectDelay sets how long Subscribe and Watch wait before they
// reconnect. Defaults to what the server says (2s).
func WithReconnectDelay(d time.Duration) Option { return func(c *Client) { c.reconnect = d } }

// WithToken sends token as a bearer token.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// New returns a client for the server at baseURL (like http://localhost:8080).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Error is a problem the server answered with.
type Error struct {
	errand.Problem
	// StatusCode is the HTTP status.
	StatusCode int
	// RetryAfter is the server's Retry-After, if any.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Detail, e.StatusCode)
	for _, f := range e.Errors {
		msg += fmt.Sprintf("; %s: %s", f.Pointer, f.Message)
	}
	return msg
}

// Response is the parts of an answer beyond its body.
type Response struct {
	StatusCode int
	Header     http.Header
}

// Do sends a request with a JSON body (nil for none) and decodes a JSON answer
// into out (nil to discard). Problems come back as *Error.
func (c *Client) Do(ctx context.Context, method, path string, body any, header http.Header, out any) (*Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
		header = header.Clone()
		if header == nil {
			header = http.Header{}
		}
		header.Set("Content-Type", "application/json")
	}
	return c.send(ctx, method, path, rd, header, out)
}

// Upload PUTs raw bytes with a content type to path.
func (c *Client) Upload(ctx context.Context, path, contentType string, body io.Reader) (*Response, error) {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return c.send(ctx, http.MethodPut, path, body, h, nil)
}

// send makes one request and decodes a JSON answer into out (nil to discard).
func (c *Client) send(ctx context.Context, method, path string, body io.Reader, header http.Header, out any) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	r := &Response{StatusCode: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode >= 400 {
		return r, problemOf(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return r, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return r, fmt.Errorf("decode %s %s answer: %w", method, path, err)
	}
	return r, nil
}

func problemOf(resp *http.Response) error {
	e := &Error{StatusCode: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &e.Problem) != nil || e.Code == "" {
		e.Code, e.Detail = "http_"+strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(b))
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// SubmitOptions are the optional parts of a submit.
type SubmitOptions struct {
	IdempotencyKey string
	// Wait asks the server to hold the answer up to this long for the result.
	Wait        time.Duration
	RunAt       time.Time
	Delay       time.Duration
	Priority    int
	MaxAttempts int
	Timeout     time.Duration
	Metadata    map[string]string
	// CallbackURL gets the job's terminal event, signed with the tenant's
	// callback secret (verify it with VerifyWebhook).
	CallbackURL string
}

// Submitted is a submit's answer.
type Submitted struct {
	*errand.Job
	// Replayed is true when the idempotency key returned an earlier job.
	Replayed bool
}

// Submit asks for operation to run with input (any JSON-encodable value, or a
// json.RawMessage).
func (c *Client) Submit(ctx context.Context, operation string, input any, o *SubmitOptions) (*Submitted, error) {
	if o == nil {
		o = &SubmitOptions{}
	}
	body := map[string]any{"operation": operation}
	if input != nil {
		body["input"] = input
	}
	h := http.Header{}
	setOptions(body, h, o)
	j := &errand.Job{}
	resp, err := c.Do(ctx, http.MethodPost, "/v1/jobs", body, h, j)
	if err != nil {
		return nil, err
	}
	return &Submitted{Job: j, Replayed: resp.Header.Get("Idempotent-Replayed") == "true"}, nil
}

func setOptions(body map[string]any, h http.Header, o *SubmitOptions) {
	if o.IdempotencyKey != "" {
		h.Set("Idempotency-Key", o.IdempotencyKey)
	}
	if o.Wait > 0 {
		h.Set("Prefer", "wait="+strconv.FormatFloat(o.Wait.Seconds(), 'f', -1, 64))
	}
	if !o.RunAt.IsZero() {
		body["run_at"] = o.RunAt.UTC().Format(time.RFC3339Nano)
	}
	if o.Delay > 0 {
		body["delay_seconds"] = int(o.Delay.Seconds())
	}
	if o.Priority != 0 {
		body["priority"] = o.Priority
	}
	if o.MaxAttempts > 0 {
		body["max_attempts"] = o.MaxAttempts
	}
	if o.Timeout > 0 {
		body["timeout_seconds"] = int(o.Timeout.Seconds())
	}
	if len(o.Metadata) > 0 {
		body["metadata"] = o.Metadata
	}
	if o.CallbackURL != "" {
		body["callback_url"] = o.CallbackURL
	}
}

// Get reads a job.
func (c *Client) Get(ctx context.Context, id string) (*errand.Job, error) {
	j := &errand.Job{}
	_, err := c.Do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, nil, j)
	return j, err
}

// Wait returns the job once it has finished, long-polling the server, or the job
// as it is when timeout passes (check Status.Terminal).
func (c *Client) Wait(ctx context.Context, id string, timeout time.Duration) (*errand.Job, error) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		h := http.Header{}
		if left > 0 {
			h.Set("Prefer", "wait="+strconv.Itoa(int(min(left, 60*time.Second).Seconds()+0.5)))
		}
		j := &errand.Job{}
		if _, err := c.Do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, h, j); err != nil {
			return nil, err
		}
		if j.Status.Terminal() || time.Until(deadline) <= 0 {
			return j, nil
		}
	}
}

// ListOptions filter a job listing.
type ListOptions struct {
	Operation string
	Status    errand.Status
	Limit     int
	Cursor    string
}

// JobPage is one page of a listing.
type JobPage struct {
	Jobs       []*errand.Job `json:"jobs"`
	NextCursor *string       `json:"next_cursor"`
}

// List returns a page of jobs, newest first.
func (c *Client) List(ctx context.Context, o ListOptions) (*JobPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"operation": o.Operation, "status": string(o.Status), "cursor": o.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	p := &JobPage{}
	_, err := c.Do(ctx, http.MethodGet, "/v1/jobs?"+q.Encode(), nil, nil, p)
	return p, err
}

// Cancel cancels a job (or asks its worker to stop).
func (c *Client) Cancel(ctx context.Context, id string) (*errand.Job, error) {
	j := &errand.Job{}
	_, err := c.Do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, nil, j)
	return j, err
}

// Retry runs a failed or canceled job again.
func (c *Client) Retry(ctx context.Context, id string) (*errand.Job, error) {
	j := &errand.Job{}
	_, err := c.Do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/retry", nil, nil, j)
	return j, err
}

// Delete forgets a finished job.
func (c *Client) Delete(ctx context.Context, id string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/v1/jobs/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// EventPage is one page of a job's events.
type EventPage struct {
	Events     []Event `json:"events"`
	NextCursor *string `json:"next_cursor"`
}

// Event is an event as the API sends it.
type Event struct {
	ID     string          `json:"id"`
	Stream string          `json:"stream"`
	Type   string          `json:"type"`
	Time   time.Time       `json:"time"`
	Data   json.RawMessage `json:"data"`
}

// Events returns a job's events after the cursor after ("" for the start).
func (c *Client) Events(ctx context.Context, id, after string) (*EventPage, error) {
	p := &EventPage{}
	_, err := c.Do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/events?after="+url.QueryEscape(after), nil, nil, p)
	return p, err
}
