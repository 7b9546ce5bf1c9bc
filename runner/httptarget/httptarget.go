// Package httptarget runs jobs by calling an HTTP endpoint, like Google Cloud
// Tasks: the job's input is the body; a 2xx answer is the result.
//
// Each request carries Errand-Job-Id, Errand-Attempt, Errand-Operation, a W3C
// traceparent (the job's run in the submitter's trace; for a job that came
// without one, a trace id of the job's own and a new span per attempt) and a Standard
// Webhooks signature (webhook-id is the job id, stable across attempts, so the
// target can use it to drop duplicates). Redirects are not followed.
//
// Answers: 2xx → succeeded, with a JSON body as the result (another body is stored
// as the artifact "response"); 408, 429, 5xx, time-outs and connection errors →
// retried with backoff, honouring Retry-After; other 3xx/4xx → failed without
// retry, with the target's answer in the job's error.
//
// A 429 or 503 also slows the whole operation on this node (see gate): no
// call before its Retry-After has passed, then calls at once ramp back up
// (AIMD). The job whose call was answered so is a failed attempt, retried
// after the Retry-After like any other (it counts against max_attempts).
package httptarget

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/jsonguard"
	"github.com/errandhq/errand/signing"
	"github.com/errandhq/errand/worker"
)

// MaxResponse caps the target's answer kept as a result or artifact (16 MiB).
const MaxResponse = 16 << 20

// Runner calls an operation's target.
type Runner struct {
	op     errand.Operation
	secret string
	client *http.Client
	gate   *gate
}

// New returns the runner for op, signing with secret.
func New(op errand.Operation, secret string) *Runner {
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: max(op.Handler.Workers, 2),
		IdleConnTimeout: 90 * time.Second, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		ResponseHeaderTimeout: op.Handler.Timeout}
	return &Runner{op: op, secret: secret, gate: newGate(op.Handler.Workers), client: &http.Client{Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Run calls the target once for j, when the operation's gate lets it (see
// gate: a target that answered 429 or 503 is called again by no one on this
// node before its Retry-After, then ramps back up).
func (r *Runner) Run(ctx context.Context, j *worker.Job) (any, error) {
	if err := r.gate.acquire(ctx); err != nil {
		return nil, err
	}
	outcome, after := callOther, time.Duration(0)
	defer func() { r.gate.release(outcome, after) }()
	ctx, cancel := context.WithTimeout(ctx, r.op.Handler.Timeout)
	defer cancel()
	req, err := r.request(ctx, j)
	if err != nil {
		return nil, &worker.Error{Code: "target_request", Err: err, NoRetry: true}
	}
	start := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, r.transportError(ctx, err, time.Since(start))
	}
	switch c := resp.StatusCode; {
	case c == http.StatusTooManyRequests || c == http.StatusServiceUnavailable:
		outcome, after = callPushedBack, retryAfter(resp.Header.Get("Retry-After"))
	case c >= 200 && c < 300:
		outcome = callSucceeded
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, r.transportError(ctx, err, time.Since(start))
	}
	if len(body) > MaxResponse {
		return nil, &worker.Error{Code: "target_response_too_large", NoRetry: true,
			Err: fmt.Errorf("the target answered more than %d bytes", MaxResponse)}
	}
	return r.outcome(ctx, j, resp, body)
}

func (r *Runner) request(ctx context.Context, j *worker.Job) (*http.Request, error) {
	body := []byte(j.Input)
	req, err := http.NewRequestWithContext(ctx, r.op.Handler.Method, r.op.Handler.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	h := req.Header
	for k, v := range r.op.Handler.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "errand")
	h.Set("Errand-Job-Id", j.ID)
	h.Set("Errand-Attempt", strconv.Itoa(j.Attempt))
	h.Set("Errand-Operation", j.Operation)
	h.Set("traceparent", cmp.Or(j.TraceParent, traceparent(j.ID)))
	signing.SetHeaders(h, j.ID, time.Now(), body, r.secret)
	return req, nil
}

// traceparent is a W3C trace context header: the trace id is the same for every
// attempt of a job, the span id new each time.
func traceparent(jobID string) string {
	sum := sha256.Sum256([]byte(jobID))
	var span [8]byte
	_, _ = rand.Read(span[:])
	return "00-" + hex.EncodeToString(sum[:16]) + "-" + hex.EncodeToString(span[:]) + "-01"
}

// transportError classifies a failed call: all are retried.
func (r *Runner) transportError(ctx context.Context, err error, took time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return &worker.Error{Code: "target_timeout", Err: fmt.Errorf("no answer from %s within %s", r.op.Handler.URL, r.op.Handler.Timeout)}
	}
	if ctx.Err() != nil {
		return ctx.Err() // canceled: the worker loop reports it
	}
	return &worker.Error{Code: "target_unreachable", Err: fmt.Errorf("calling %s failed after %s: %w", r.op.Handler.URL, took.Round(time.Millisecond), unwrapURL(err))}
}

func unwrapURL(err error) error {
	if ue, ok := err.(interface{ Unwrap() error }); ok {
		return ue.Unwrap()
	}
	return err
}

// outcome turns the target's answer into a result or an error.
func (r *Runner) outcome(ctx context.Context, j *worker.Job, resp *http.Response, body []byte) (any, error) {
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return r.result(ctx, j, resp.Header.Get("Content-Type"), body)
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return nil, &worker.Error{Code: "target_" + strconv.Itoa(code), After: retryAfter(resp.Header.Get("Retry-After")),
			Err: fmt.Errorf("the target answered %s: %s", resp.Status, tail(body))}
	case code >= 300 && code < 400:
		return nil, &worker.Error{Code: "target_" + strconv.Itoa(code), NoRetry: true,
			Err: fmt.Errorf("the target answered %s to %s (redirects are not followed)", resp.Status, resp.Header.Get("Location"))}
	default:
		return nil, &worker.Error{Code: "target_" + strconv.Itoa(code), NoRetry: true,
			Err: fmt.Errorf("the target answered %s: %s", resp.Status, tail(body))}
	}
}

// result is a JSON body as it is, nothing for an empty body, and any other body
// stored as the artifact "response" with a pointer to it.
func (r *Runner) result(ctx context.Context, j *worker.Job, contentType string, body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if (mt == "application/json" || strings.HasSuffix(mt, "+json")) && jsonguard.Valid(body) {
		return json.RawMessage(body), nil
	}
	if contentType == "" {
		contentType = http.DetectContentType(body)
	}
	if err := j.Artifact(ctx, "response", contentType, bytes.NewReader(body)); err != nil {
		return nil, fmt.Errorf("store the target's answer: %w", err)
	}
	return map[string]any{"artifact": "response", "url": j.Path() + "/artifacts/response",
		"content_type": contentType, "size": len(body)}, nil
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; 0 when absent.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, 24*time.Hour)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), 24*time.Hour)
	}
	return 0
}

// tail keeps the last KiB of a body for the job's error.
func tail(b []byte) string {
	const n = 1024
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
