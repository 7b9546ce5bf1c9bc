package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/errandhq/errand"
)

// GraphQL serves /v1/graphql (package graphql implements it). httpapi lends it
// an Access, so GraphQL authenticates, limits streams and audits exactly as
// the REST routes do.
type GraphQL interface {
	Handler(a Access) http.Handler
}

// UI serves the dashboard at /ui/ (package ui implements it). httpapi lends
// it an Access, as it does GraphQL, and the API itself: what the dashboard
// does through the REST routes (with the signed-in principal's credential)
// goes through the same authentication, permission checks and audit.
type UI interface {
	Handler(a Access, api http.Handler) http.Handler
}

// Access is what httpapi lends a transport it does not implement itself.
type Access interface {
	// Authenticate returns the principal of r: its bearer token or, with
	// allowTicket (event streams), its ?ticket=; in development mode the dev
	// principal. A failure (code unauthorized) is counted in the audit log.
	Authenticate(r *http.Request, allowTicket bool) (errand.Principal, error)
	// Credential authenticates a token or a ticket that came in a message on
	// r's connection (a WebSocket's connection_init), as Authenticate does;
	// ctx is the connection's (r's has ended once the connection is taken over).
	Credential(ctx context.Context, r *http.Request, token, ticket string) (errand.Principal, error)
	// OpenStream takes one of p's event-stream slots on this node
	// (http.max_streams_per_principal); release gives it back. Over the limit
	// the error is rate_limited.
	OpenStream(p errand.Principal) (release func(), err error)
	// Bind returns a context that ends with parent, or when p's credential
	// ends (its key revoked, its token expired): context.Cause is then an
	// unauthorized error saying why.
	Bind(parent context.Context, p errand.Principal) (context.Context, context.CancelFunc)
	// Streams is the context connections taken over from net/http run under:
	// it ends when the server shuts down. nil keeps them on their request.
	Streams() context.Context
	// Origins are the host patterns a browser's WebSocket may come from (the
	// CORS origins).
	Origins() []string
	// Denied records a refusal of p (an errand.Error with an Action, answered
	// with status) in the audit log.
	Denied(r *http.Request, p errand.Principal, err error, status int)
	// Act records an administrative act of p in the audit log and waits for
	// its commit.
	Act(r *http.Request, p errand.Principal, action, resource, detail string)
	// Meter hears GraphQL's streams and subscriptions for the metrics, as
	// the API's own (transports graphql-ws, graphql-sse).
	Meter() Meter
}

// RequestID is the id observe gave the request whose context ctx is.
func RequestID(ctx context.Context) string { return requestID(ctx) }

// lent is the Access httpapi lends: its own access, and what the routes know.
type lent struct {
	acc     *access
	streams context.Context
	origins []string
}

var _ Access = (*lent)(nil)

// Authenticate authenticates a GraphQL request and takes its token of
// http.rate_limit (as every other request does).
func (l *lent) Authenticate(r *http.Request, allowTicket bool) (errand.Principal, error) {
	p := errand.DevPrincipal
	if !l.acc.dev {
		var err error
		if p, err = l.acc.principal(r, allowTicket); err != nil {
			l.acc.failed(r, err)
			return p, err
		}
	}
	return p, l.acc.takeHTTP(r.Context(), p, r.Header.Get)
}

func (l *lent) Credential(ctx context.Context, r *http.Request, token, ticket string) (errand.Principal, error) {
	a := l.acc
	if a.dev {
		return errand.DevPrincipal, nil
	}
	var p errand.Principal
	var err error
	switch {
	case a.auth == nil:
		err = errand.Errorf(errand.EUNAUTHORIZED, "authentication is required")
	case ticket != "":
		p, err = a.auth.RedeemTicket(ctx, ticket)
	case token != "":
		scheme, rest, found := strings.Cut(token, " ")
		if found && strings.EqualFold(scheme, "Bearer") {
			token = strings.TrimSpace(rest)
		}
		p, err = a.auth.Authenticate(ctx, token)
	default:
		err = errand.Errorf(errand.EUNAUTHORIZED, `no credential: send {"authorization": "Bearer <token>"} or {"ticket": "<ticket from POST /v1/tickets>"} as the payload`)
	}
	if err != nil {
		a.failed(r, err)
	}
	return p, err
}

func (l *lent) OpenStream(p errand.Principal) (func(), error) { return l.acc.acquireStreamOf(p) }

func (l *lent) Meter() Meter { return l.acc.meter }

func (l *lent) Bind(parent context.Context, p errand.Principal) (context.Context, context.CancelFunc) {
	return l.acc.bind(parent, p)
}

func (l *lent) Streams() context.Context { return l.streams }

func (l *lent) Origins() []string { return l.origins }

func (l *lent) Denied(r *http.Request, p errand.Principal, err error, status int) {
	l.acc.recordDenialOf(r, p, err, status)
}

func (l *lent) Act(r *http.Request, p errand.Principal, action, resource, detail string) {
	l.acc.recordActOf(r, p, action, resource, detail)
}
