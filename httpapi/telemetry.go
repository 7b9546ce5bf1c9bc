package httpapi

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/telemetry"
)

// Meter hears what the API does, for metrics (telemetry.Metrics is one).
// Its methods must be quick: they run on every request.
type Meter interface {
	// Request reports an answered request by its route's pattern ("POST
	// /v1/jobs", "/" when none matched), method, status and time; stream
	// marks an event stream (counted, not timed).
	Request(pattern, method string, status int, d time.Duration, stream bool)
	// StreamOpened and StreamClosed report an event-stream connection of a
	// transport (sse, websocket).
	StreamOpened(transport string)
	StreamClosed(transport string)
	// Subscriptions adds delta to a transport's open subscriptions.
	Subscriptions(transport string, delta int)
	// StreamReset reports a subscription reset for falling behind.
	StreamReset(transport string)
	// AuthFailed reports a failed authentication by what failed (missing,
	// scheme, token_in_url, api_key, jwt, ticket).
	AuthFailed(reason string)
	// Denied reports a refusal of a permission (its action, never its object).
	Denied(action string)
}

// nopMeter hears nothing.
type nopMeter struct{}

func (nopMeter) Request(string, string, int, time.Duration, bool) {}
func (nopMeter) StreamOpened(string)                              {}
func (nopMeter) StreamClosed(string)                              {}
func (nopMeter) Subscriptions(string, int)                        {}
func (nopMeter) StreamReset(string)                               {}
func (nopMeter) AuthFailed(string)                                {}
func (nopMeter) Denied(string)                                    {}

// The transports' names, as Meter hears them.
const (
	transportSSE = "sse"
	transportWS  = "websocket"
)

// openStream takes a stream slot for the request's principal (acquireStream)
// and counts the connection open until release.
func (a *access) openStream(r *http.Request, transport string) (release func(), err error) {
	free, err := a.acquireStream(r)
	if err != nil {
		return nil, err
	}
	a.meter.StreamOpened(transport)
	var once sync.Once
	return func() {
		once.Do(func() {
			free()
			a.meter.StreamClosed(transport)
		})
	}, nil
}

// failureReason says what part of r's credentials failed to authenticate, in
// the few words Meter counts by.
func failureReason(r *http.Request) string {
	q := r.URL.Query()
	h := r.Header.Get("Authorization")
	switch {
	case q.Has("access_token") || q.Has("token"):
		return "token_in_url"
	case h == "" && q.Has("ticket"):
		return "ticket"
	case h == "":
		return "missing"
	}
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	switch {
	case !strings.EqualFold(scheme, "Bearer"):
		return "scheme"
	case token == "":
		return "missing"
	case strings.HasPrefix(token, "ek_"):
		return "api_key"
	}
	return "jwt"
}

// isStream reports whether the answer was an event stream (SSE, or a
// connection upgraded to WebSocket).
func isStream(r *http.Request, w http.ResponseWriter, status int) bool {
	return status == http.StatusSwitchingProtocols || strings.EqualFold(r.Header.Get("Upgrade"), "websocket") ||
		strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream")
}

// handleMetrics serves GET /metrics: open in development mode, else to
// callers granted the operator-level metrics:read@* (the metrics count every
// tenant's work). Prometheus sends the credential as its bearer token
// (authorization in its scrape config).
func handleMetrics(acc *access, metrics http.Handler) http.Handler {
	check := acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		if p := principal(r); !acc.dev && !p.CanEveryTenant(errand.PermMetricsRead, "") {
			return errand.Deny(errand.PermMetricsRead+errand.EveryTenant, "metrics")
		}
		metrics.ServeHTTP(w, r)
		return nil
	})
	return acc.authenticate(false, check)
}

// handleUsage serves GET /v1/usage?from=&to=&step=minute|hour&operation=&tenant=.
func handleUsage(acc *access, u *telemetry.Usage) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		uq := telemetry.UsageQuery{Tenant: q.Get("tenant"), Operation: q.Get("operation"), Step: q.Get("step")}
		var err error
		if uq.From, err = timeParam(q, "from"); err != nil {
			return err
		}
		if uq.To, err = timeParam(q, "to"); err != nil {
			return err
		}
		rep, err := u.Report(r.Context(), principal(r), uq)
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, rep)
		return nil
	})
}

// timeParam reads an RFC 3339 time from the query (zero when absent).
func timeParam(q map[string][]string, name string) (time.Time, error) {
	vs := q[name]
	if len(vs) == 0 || vs[0] == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, vs[0])
	if err != nil {
		return time.Time{}, &errand.Error{Code: errand.EINVALID, Message: name + " must be an RFC 3339 time, like 2026-12-01T00:00:00Z",
			Fields: []errand.FieldError{{Pointer: "/" + name, Message: "not an RFC 3339 time"}}}
	}
	return t, nil
}
