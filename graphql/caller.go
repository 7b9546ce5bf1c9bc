package graphql

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/errandhq/errand"
	"github.com/errandhq/errand/httpapi"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// caller is who an operation runs as, and what its refusals and acts are
// recorded with.
type caller struct {
	p errand.Principal
	// r is the request (a WebSocket's upgrade request): the audit log's
	// request id, route and remote address.
	r *http.Request
	a httpapi.Access
	// lastEventID is an event stream's Last-Event-ID: a resumed subscription
	// starts after it, whatever its after argument says.
	lastEventID string
	// src is where a subscription's root resolver leaves what its transport
	// follows (see source).
	src *source
}

type callerKey struct{}

func withCaller(ctx context.Context, c *caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// callerOf is the caller of the operation ctx belongs to.
func callerOf(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	if c == nil {
		return &caller{} // no principal: every service refuses
	}
	return c
}

// present turns an error into what the client sees: errand's errors with
// their problem's code (and status, field errors, Retry-After) in
// extensions, refusals recorded in the audit log; the document's own errors
// (syntax, validation, limits) as invalid_request; anything else as an
// internal error, logged.
func (s *Server) present(ctx context.Context, err error) *gqlerror.Error {
	gerr := graphql.DefaultErrorPresenter(ctx, err)
	var e *errand.Error
	switch {
	case errors.As(err, &e):
		p := httpapi.Problem(e)
		gerr.Message = p.Detail
		gerr.Extensions = problemExtensions(p, e)
		if c := callerOf(ctx); c.a != nil {
			c.a.Denied(c.r, c.p, e, p.Status)
		}
	case isDocumentError(err):
		if gerr.Extensions == nil || gerr.Extensions["code"] == nil || isGQLGenCode(gerr.Extensions["code"]) {
			gerr.Extensions = map[string]any{"code": errand.EINVALID}
		}
	default:
		c := callerOf(ctx)
		reqID := ""
		if c.r != nil {
			reqID = httpapi.RequestID(c.r.Context())
		}
		if !errors.Is(err, context.Canceled) {
			s.cfg.Log.Error("graphql: internal error", "err", err, "request_id", reqID, "path", gerr.Path.String())
		}
		gerr.Message = "internal error"
		gerr.Extensions = map[string]any{"code": errand.EINTERNAL}
	}
	return gerr
}

// problemExtensions are a problem's parts as GraphQL error extensions.
func problemExtensions(p *errand.Problem, e *errand.Error) map[string]any {
	ext := map[string]any{"code": p.Code, "status": p.Status}
	if len(p.Errors) > 0 {
		ext["errors"] = p.Errors
	}
	if e.RetryAfter > 0 {
		ext["retryAfter"] = int(e.RetryAfter.Seconds() + 0.999)
	}
	return ext
}

// isDocumentError reports whether err is about the document (its syntax,
// its validation against the schema, its variables, the limits), not a
// failure while resolving it.
func isDocumentError(err error) bool {
	var gerr *gqlerror.Error
	if !errors.As(err, &gerr) {
		return false
	}
	return gerr.Err == nil || gerr.Rule != "" || gerr.Extensions["code"] != nil
}

func isGQLGenCode(v any) bool {
	s, _ := v.(string)
	return len(s) > 8 && s[:8] == "GRAPHQL_" || s == "COMPLEXITY_LIMIT_EXCEEDED"
}

// recoverPanic turns a resolver's panic into an internal error (logged with
// its stack by present's caller).
func (s *Server) recoverPanic(ctx context.Context, v any) error {
	s.cfg.Log.Error("graphql: panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return errors.New("panic in a resolver")
}

// limitError is a document refused for a limit: invalid_request, with the
// limit's name and value in extensions.
func limitError(limit string, max int, format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...),
		Extensions: map[string]any{"code": errand.EINVALID, "limit": limit, "max": max}}
}
