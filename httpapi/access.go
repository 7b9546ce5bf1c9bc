package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/audit"
	"github.com/errandhq/errand/auth"
)

// access authenticates requests and keeps the audit trail of what it refuses.
type access struct {
	dev     bool
	auth    *auth.Authenticator // nil: only dev mode is served
	audit   *audit.Log          // nil: nothing is recorded
	streams *streamLimiter
	log     *slog.Logger
	meter   Meter // never nil (nopMeter when nothing measures)
	limits  limits
}

// authenticate sets the request's principal from its bearer token or, where
// tickets are allowed (event streams), a ?ticket= from POST /v1/tickets.
// Tokens are never accepted in the URL: URLs end up in logs and histories.
func (a *access) authenticate(allowTicket bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if a.dev {
			next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, keyPrincipal, errand.DevPrincipal)))
			return
		}
		p, err := a.principal(r, allowTicket)
		if err != nil {
			a.failed(r, err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="errand"`)
			writeError(w, r, a.log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, keyPrincipal, p)))
	})
}

func (a *access) principal(r *http.Request, allowTicket bool) (errand.Principal, error) {
	q := r.URL.Query()
	if q.Has("access_token") || q.Has("token") {
		return errand.Principal{}, errand.Errorf(errand.EUNAUTHORIZED,
			"tokens are not accepted in URLs: send Authorization: Bearer, or get a ticket from POST /v1/tickets")
	}
	if a.auth == nil {
		return errand.Principal{}, errand.Errorf(errand.EUNAUTHORIZED, "authentication is required")
	}
	h := r.Header.Get("Authorization")
	if h == "" && q.Has("ticket") {
		if !allowTicket {
			return errand.Principal{}, errand.Errorf(errand.EUNAUTHORIZED, "tickets are accepted only by event streams (SSE and WebSocket)")
		}
		return a.auth.RedeemTicket(r.Context(), q.Get("ticket"))
	}
	scheme, token, _ := strings.Cut(h, " ")
	if h != "" && !strings.EqualFold(scheme, "Bearer") {
		return errand.Principal{}, errand.Errorf(errand.EUNAUTHORIZED, "use Authorization: Bearer <token>")
	}
	return a.auth.Authenticate(r.Context(), strings.TrimSpace(token))
}

// failed records a failed authentication: counted per source, so a flood of
// bad tokens writes a few entries a minute (audit.Log.Failure).
func (a *access) failed(r *http.Request, err error) {
	if errand.ErrorCode(err) != errand.EUNAUTHORIZED {
		return
	}
	a.meter.AuthFailed(failureReason(r))
	if a.audit == nil {
		return
	}
	a.audit.Failure(errand.AuditEntry{Action: "authenticate", Resource: r.Method + " " + r.URL.Path,
		Outcome: errand.AuditFailed, Status: http.StatusUnauthorized, Detail: errand.ErrorMessage(err),
		RequestID: requestID(r.Context()), Remote: remoteIP(r)}, r.Pattern)
}

// bindStream returns the context an event stream opened by r runs in: it ends
// with parent, or when the credential of r's principal ends (its key revoked,
// its token expired), with context.Cause saying so (see credentialEnded).
func (a *access) bindStream(parent context.Context, r *http.Request) (context.Context, context.CancelFunc) {
	return a.bind(parent, principal(r))
}

// bind returns a context that ends with parent, or when p's credential ends.
func (a *access) bind(parent context.Context, p errand.Principal) (context.Context, context.CancelFunc) {
	if a.dev || a.auth == nil {
		return context.WithCancel(parent)
	}
	return a.auth.Bind(parent, &p)
}

// credentialEnded is why ctx (from bindStream) ended when the principal's
// credential ended, or nil.
func credentialEnded(ctx context.Context) *errand.Error {
	var e *errand.Error
	if ctx.Err() != nil && errors.As(context.Cause(ctx), &e) && e.Code == errand.EUNAUTHORIZED {
		return e
	}
	return nil
}

// handle adapts fn: an error it returns is answered as a problem (fail), so
// each handler reads as its logic.
func (a *access) handle(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			a.fail(w, r, err)
		}
	})
}

// fail answers err as a problem and records a refusal in the audit log.
func (a *access) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.recordDenial(r, err, Problem(err).Status)
	writeError(w, r, a.log, err)
}

// recordDenial writes a refusal (403, or a 404 that hides another tenant's
// resource) to the audit log; fail calls it for every error it answers.
func (a *access) recordDenial(r *http.Request, err error, status int) {
	a.recordDenialOf(r, principal(r), err, status)
}

// recordDenialOf is recordDenial for a principal that did not come with r
// (one authenticated by a message on r's connection).
func (a *access) recordDenialOf(r *http.Request, p errand.Principal, err error, status int) {
	var e *errand.Error
	if !errors.As(err, &e) || e.Action == "" {
		return
	}
	a.meter.Denied(e.Action)
	if a.audit == nil {
		return
	}
	a.audit.Record(errand.AuditEntry{Tenant: p.Tenant, Subject: p.Subject, Action: e.Action, Resource: e.Resource,
		Outcome: errand.AuditDenied, Status: status, Detail: e.Message, RequestID: requestID(r.Context()), Remote: remoteIP(r)})
}

// recordAct writes an administrative act to the audit log and waits for it to
// be committed.
func (a *access) recordAct(r *http.Request, action, resource, detail string) {
	a.recordActOf(r, principal(r), action, resource, detail)
}

// recordActOf is recordAct for a principal that did not come with r.
func (a *access) recordActOf(r *http.Request, p errand.Principal, action, resource, detail string) {
	if a.audit == nil {
		return
	}
	err := a.audit.Write(context.WithoutCancel(r.Context()), errand.AuditEntry{Tenant: p.Tenant, Subject: p.Subject,
		Action: action, Resource: resource, Outcome: errand.AuditOK, Detail: detail,
		RequestID: requestID(r.Context()), Remote: remoteIP(r)})
	if err != nil {
		a.log.Error("audit", "action", action, "err", err)
	}
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// streamLimiter caps the event streams (SSE and WebSocket) each principal holds
// open on this node.
type streamLimiter struct {
	max  int // 0: no limit
	mu   sync.Mutex
	open map[string]int
}

// acquire takes a stream slot for the request's principal; release gives it back.
func (a *access) acquireStream(r *http.Request) (release func(), err error) {
	return a.acquireStreamOf(principal(r))
}

// acquireStreamOf takes a stream slot for p.
func (a *access) acquireStreamOf(p errand.Principal) (release func(), err error) {
	if a.streams == nil || a.streams.max <= 0 {
		return func() {}, nil
	}
	l := a.streams
	key := p.Tenant + "\x00" + p.ID
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.max {
		return nil, &errand.Error{Code: errand.ERATELIMITED, RetryAfter: 5 * time.Second,
			Message: "too many open event streams for this principal (limit " + strconv.Itoa(l.max) + ")"}
	}
	l.open[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			if l.open[key]--; l.open[key] <= 0 {
				delete(l.open, key)
			}
			l.mu.Unlock()
		})
	}, nil
}

// secure adds the security headers every answer carries: nothing errand sends
// is to be sniffed, framed, or given a referrer; over TLS, HSTS.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// cors answers preflights and marks answers readable by the configured
// origins ("*" for any). Credentials are bearer tokens, not cookies, so
// Access-Control-Allow-Credentials is never sent.
func cors(origins []string, maxAge time.Duration, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	any := slices.Contains(origins, "*")
	age := strconv.Itoa(int(maxAge.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		allowed := any || slices.Contains(origins, origin)
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "Location, Retry-After, X-Request-Id, Preference-Applied, Idempotent-Replayed, Errand-Duplicate-Of, RateLimit, RateLimit-Policy")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if allowed {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Prefer, Last-Event-ID, X-Request-Id")
				h.Set("Access-Control-Max-Age", age)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
