package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/client"
)

// Transport is how a worker talks to errand: over HTTP (the default) or, inside
// errand itself, straight to its queue.
type Transport interface {
	// Lease takes up to n jobs, waiting for work as LeaseParams says.
	Lease(ctx context.Context, p LeaseParams) ([]errand.Lease, error)
	// Heartbeat extends a lease and records progress (nil for none). It returns
	// ErrLeaseLost when the lease is no longer held.
	Heartbeat(ctx context.Context, leaseID string, extendSeconds float64, p *errand.Progress) (cancelRequested bool, err error)
	// Complete finishes leases with results.
	Complete(ctx context.Context, cs []Completion) error
	// Fail ends an attempt with an error.
	Fail(ctx context.Context, leaseID string, f Failure) error
	// Release hands a job back without counting the attempt.
	Release(ctx context.Context, leaseID string) error
	// Artifact stores a file on the leased job.
	Artifact(ctx context.Context, leaseID, name, contentType string, r io.Reader) error
}

// LeaseParams is a lease request.
type LeaseParams struct {
	Operations   []string
	MaxJobs      int
	WaitSeconds  float64
	LeaseSeconds float64
	Worker       string
}

// Completion is a finished job's result.
type Completion struct {
	LeaseID string          `json:"lease_id"`
	Result  json.RawMessage `json:"result"`
}

// Failure is a failed attempt.
type Failure struct {
	Code              string
	Message           string
	Retry             bool
	RetryAfterSeconds float64 // 0: the operation's backoff
}

// Transient reports whether err is worth retrying: network trouble, a 5xx, or
// errand being unavailable or out of disk space. A 4xx answer or a coded
// client error is final.
func Transient(err error) bool {
	var ce *client.Error
	var ee *errand.Error
	switch {
	case err == nil, errors.Is(err, ErrLeaseLost):
		return false
	case errors.As(err, &ce):
		return ce.StatusCode >= 500
	case errors.As(err, &ee):
		return ee.Code == errand.EUNAVAILABLE || ee.Code == errand.EINTERNAL || ee.Code == errand.ESTORAGEFULL
	}
	return true
}

// httpTransport speaks errand's worker protocol over HTTP.
type httpTransport struct{ api *client.Client }

// NewHTTPTransport returns the HTTP transport for a client.
func NewHTTPTransport(c *client.Client) Transport { return &httpTransport{api: c} }

func (t *httpTransport) Lease(ctx context.Context, p LeaseParams) ([]errand.Lease, error) {
	var out struct {
		Leases []errand.Lease `json:"leases"`
	}
	body := map[string]any{"operations": p.Operations, "max_jobs": p.MaxJobs, "wait_seconds": p.WaitSeconds,
		"lease_seconds": p.LeaseSeconds, "worker": p.Worker}
	_, err := t.api.Do(ctx, http.MethodPost, "/v1/leases", body, nil, &out)
	return out.Leases, err
}

func (t *httpTransport) Heartbeat(ctx context.Context, leaseID string, extend float64, p *errand.Progress) (bool, error) {
	var out struct {
		CancelRequested bool `json:"cancel_requested"`
	}
	body := map[string]any{"extend_seconds": extend}
	if p != nil {
		body["progress"] = p
	}
	_, err := t.api.Do(ctx, http.MethodPost, leasePath(leaseID, "heartbeat"), body, nil, &out)
	return out.CancelRequested, LeaseLost(err)
}

func (t *httpTransport) Complete(ctx context.Context, cs []Completion) error {
	var out struct {
		Results []completeResult `json:"results"`
	}
	_, err := t.api.Do(ctx, http.MethodPost, "/v1/leases/complete", map[string]any{"completions": cs, "brief": true}, nil, &out)
	if err != nil {
		return err
	}
	return refused(len(cs), out.Results)
}

// completeResult is one entry of a brief batch completion's answer.
type completeResult struct {
	LeaseID string          `json:"lease_id"`
	Error   *errand.Problem `json:"error"`
}

// refused reports the completions of a batch that errand refused (each entry
// succeeds or fails on its own): lost leases as ErrLeaseLost, anything else as
// errand's error. Neither is worth sending again.
func refused(total int, results []completeResult) error {
	n, first := 0, (*errand.Problem)(nil)
	for _, r := range results {
		if r.Error != nil {
			if n++; first == nil {
				first = r.Error
			}
		}
	}
	switch {
	case n == 0:
		return nil
	case first.Code == errand.ELEASEEXPIRED || first.Code == errand.ENOTFOUND:
		return fmt.Errorf("%w: %d of %d completions refused (%s)", ErrLeaseLost, n, total, first.Detail)
	}
	return errand.Errorf(first.Code, "%d of %d completions refused: %s", n, total, first.Detail)
}

func (t *httpTransport) Fail(ctx context.Context, leaseID string, f Failure) error {
	body := map[string]any{"error": map[string]string{"code": f.Code, "message": f.Message}, "retry": f.Retry}
	if f.RetryAfterSeconds > 0 {
		body["retry_after_seconds"] = f.RetryAfterSeconds
	}
	_, err := t.api.Do(ctx, http.MethodPost, leasePath(leaseID, "fail"), body, nil, nil)
	return LeaseLost(err)
}

func (t *httpTransport) Release(ctx context.Context, leaseID string) error {
	_, err := t.api.Do(ctx, http.MethodPost, leasePath(leaseID, "release"), nil, nil, nil)
	return LeaseLost(err)
}

func (t *httpTransport) Artifact(ctx context.Context, leaseID, name, contentType string, r io.Reader) error {
	_, err := t.api.Upload(ctx, leasePath(leaseID, "artifacts/"+url.PathEscape(name)), contentType, r)
	return LeaseLost(err)
}

func leasePath(leaseID, action string) string {
	return "/v1/leases/" + url.PathEscape(leaseID) + "/" + action
}

// LeaseLost maps a lease_expired answer (over HTTP or from the queue itself) to
// ErrLeaseLost, for Transport implementations.
func LeaseLost(err error) error {
	var ce *client.Error
	var ee *errand.Error
	if errors.As(err, &ce) && ce.Code == errand.ELEASEEXPIRED || errors.As(err, &ee) && ee.Code == errand.ELEASEEXPIRED {
		return ErrLeaseLost
	}
	return err
}
