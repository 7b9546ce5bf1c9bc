package httpapi

import (
	"net/http"

	"github.com/errandhq/errand/admit"
	"slices"
	"sort"
	"strings"
)

// addRoutes registers every route of the API and returns their patterns, in
// the order registered (spec documents each of them; see Routes).
func addRoutes(mux *http.ServeMux, d Deps, c *Config) []string {
	r := router{mux: mux, methods: map[string][]string{}}
	acc := &access{dev: c.Dev, auth: d.Auth, audit: d.Audit, log: d.Log, meter: meterOf(d),
		streams: &streamLimiter{max: c.MaxStreams, open: map[string]int{}},
		limits:  limits{limiter: d.Limiter, http: c.RateLimit}}
	if acc.limits.limiter == nil {
		acc.limits.limiter = admit.NewLimiter(d.Store, nil)
	}
	api := func(h http.Handler) http.Handler {
		return acc.authenticate(false, acc.rateLimit(limitBody(c.MaxBodyBytes, h)))
	}
	stream := func(h http.Handler) http.Handler {
		return acc.authenticate(true, acc.rateLimit(limitBody(c.MaxBodyBytes, h)))
	}
	upload := func(h http.Handler) http.Handler {
		return acc.authenticate(false, acc.rateLimit(limitBody(c.MaxArtifactBytes, h)))
	}

	r.handle("GET /healthz", handleHealth())
	r.handle("GET /readyz", handleReady(acc, d.Store, d.Bridges))
	if d.Metrics != nil {
		r.handle("GET /metrics", handleMetrics(acc, d.Metrics))
	}
	if docs := d.Contracts; docs != nil { // public, as API descriptions are
		for _, name := range []string{"openapi.json", "openapi.yaml", "asyncapi.json", "asyncapi.yaml"} {
			r.handle("GET /v1/"+name, docs.Document(name))
		}
		r.handle("GET /docs", docs.Page())
		r.handle("GET /docs/assets/{name}", docs.Asset())
	}

	r.handle("POST /v1/jobs", api(handleSubmit(acc, d.Jobs, c)))
	r.handle("POST /v1/job-batches", api(handleSubmitBatch(acc, d.Jobs)))
	r.handle("GET /v1/jobs", api(handleListJobs(acc, d.Jobs)))
	r.handle("GET /v1/jobs/{id}", api(handleGetJob(acc, d.Jobs, c)))
	r.handle("DELETE /v1/jobs/{id}", api(handleDeleteJob(acc, d.Jobs)))
	r.handle("POST /v1/jobs/{id}/cancel", api(handleCancelJob(acc, d.Jobs)))
	r.handle("POST /v1/jobs/{id}/retry", api(handleRetryJob(acc, d.Jobs)))
	r.handle("GET /v1/jobs/{id}/events", stream(handleJobEvents(acc, d.Jobs, d.Store, d.Hub, d.Streams, c)))
	r.handle("GET /v1/jobs/{id}/artifacts/{name}", api(handleGetArtifact(acc, d.Jobs)))
	r.handle("GET /v1/operations", api(handleListOperations(acc, d.Jobs, d.Store)))
	r.handle("GET /v1/operations/{name}", api(handleGetOperation(acc, d.Jobs, d.Store)))
	r.handle("POST /v1/operations/{name}/pause", api(handlePause(acc, d.Queue, d.Jobs, d.Store, true)))
	r.handle("POST /v1/operations/{name}/resume", api(handlePause(acc, d.Queue, d.Jobs, d.Store, false)))

	r.handle("GET /v1/ws", stream(handleWS(acc, d, c)))
	r.handle("GET /v1/channels", api(handleListChannels(d.Channels)))
	r.handle("POST /v1/channels/{channel}/events", api(handlePublish(acc, d.Channels)))
	r.handle("GET /v1/channels/{channel}/events", stream(handleChannelEvents(acc, d.Channels, d.Store, d.Hub, d.Streams, c)))

	if h := d.Webhooks; h != nil {
		r.handle("POST /v1/webhooks", api(handleCreateEndpoint(acc, h)))
		r.handle("GET /v1/webhooks", api(handleListEndpoints(acc, h)))
		r.handle("GET /v1/webhooks/{id}", api(handleGetEndpoint(acc, h)))
		r.handle("PATCH /v1/webhooks/{id}", api(handleUpdateEndpoint(acc, h)))
		r.handle("DELETE /v1/webhooks/{id}", api(handleDeleteEndpoint(acc, h)))
		r.handle("POST /v1/webhooks/{id}/rotate-secret", api(handleRotateSecret(acc, h)))
		r.handle("POST /v1/webhooks/{id}/recover", api(handleRecover(acc, h)))
		r.handle("GET /v1/webhooks/{id}/deliveries", api(handleListDeliveries(acc, h)))
		r.handle("GET /v1/deliveries", api(handleListDeliveries(acc, h)))
		r.handle("GET /v1/deliveries/{id}", api(handleGetDelivery(acc, h)))
		r.handle("POST /v1/deliveries/{id}/redeliver", api(handleRedeliver(acc, h)))
		r.handle("GET /v1/callback-secret", api(handleCallbackSecret(acc, h, false)))
		r.handle("POST /v1/callback-secret/rotate", api(handleCallbackSecret(acc, h, true)))
	}

	if au := d.Auth; au != nil {
		r.handle("POST /v1/oauth/token", limitBody(c.MaxBodyBytes, handleToken(acc, au)))
		r.handle("GET /.well-known/jwks.json", handleJWKS(au))
		r.handle("POST /v1/oauth/rotate-key", api(handleRotateSigningKey(acc, au)))
		r.handle("POST /v1/tickets", api(handleTicket(acc, au)))
		r.handle("POST /v1/keys", api(handleCreateKey(acc, au)))
		r.handle("GET /v1/keys", api(handleListKeys(acc, au)))
		r.handle("DELETE /v1/keys/{id}", api(handleRevokeKey(acc, au)))
	}
	if d.Audit != nil {
		r.handle("GET /v1/audit", api(handleAudit(acc, d.Audit)))
	}
	if d.Usage != nil {
		r.handle("GET /v1/usage", api(handleUsage(acc, d.Usage)))
	}
	r.handle("GET /v1/me", api(handleMe()))
	if g := d.GraphQL; g != nil {
		h := limitBody(c.MaxBodyBytes, g.Handler(&lent{acc: acc, streams: d.Streams, origins: originPatterns(c.CORSOrigins)}))
		r.handle("GET /v1/graphql", h) // queries, a WebSocket (graphql-transport-ws), an event stream (graphql-sse)
		r.handle("POST /v1/graphql", h)
	}
	r.handle("GET /v1/bridges", api(handleBridges(acc, d.Bridges)))
	if d.UI != nil { // it signs in by a session cookie of its own
		h := limitBody(c.MaxBodyBytes, d.UI.Handler(&lent{acc: acc, streams: d.Streams, origins: originPatterns(c.CORSOrigins)}, mux))
		r.handle("GET /ui/", h)
		r.handle("POST /ui/", h)
	}

	r.handle("POST /v1/leases", api(handleLease(acc, d.Queue)))
	r.handle("POST /v1/leases/complete", api(worker(acc, handleCompleteBatch(acc, d.Queue))))
	r.handle("POST /v1/leases/{lease_id}/heartbeat", api(worker(acc, handleHeartbeat(acc, d.Queue))))
	r.handle("POST /v1/leases/{lease_id}/complete", api(worker(acc, handleComplete(acc, d.Queue))))
	r.handle("POST /v1/leases/{lease_id}/fail", api(worker(acc, handleFail(acc, d.Queue))))
	r.handle("POST /v1/leases/{lease_id}/release", api(worker(acc, handleRelease(acc, d.Queue))))
	r.handle("PUT /v1/leases/{lease_id}/artifacts/{name}", upload(worker(acc, handlePutArtifact(acc, d.Queue))))

	for _, op := range d.Jobs.Operations() {
		if op.Route != "" {
			r.handle("POST "+op.Route, api(handleRouteSubmit(acc, d.Jobs, c, op.Name)))
		}
	}
	r.finish(acc)
	return r.patterns
}

// Routes returns the pattern of every route NewServer(d, cfg) serves
// ("POST /v1/jobs", "GET /v1/jobs/{id}", each operation's route), in the
// order they are registered; the 405 and 404 answers for everything else are
// not among them. It is the one list the OpenAPI document is made from.
func Routes(d Deps, cfg *Config) []string {
	c := cfg.withDefaults()
	return addRoutes(http.NewServeMux(), d, &c)
}

// Contracts serves the API's description of itself (package spec): the
// generated OpenAPI and AsyncAPI documents and the /docs page.
type Contracts interface {
	// Document serves a document by its file name: openapi.json,
	// openapi.yaml, asyncapi.json or asyncapi.yaml.
	Document(name string) http.Handler
	// Page serves /docs, Asset the files it uses (/docs/assets/{name}).
	Page() http.Handler
	Asset() http.Handler
}

// router registers routes and answers wrong methods and unknown paths with problems.
type router struct {
	mux      *http.ServeMux
	methods  map[string][]string
	patterns []string
}

func (r *router) handle(pattern string, h http.Handler) {
	method, path, _ := strings.Cut(pattern, " ")
	r.methods[path] = append(r.methods[path], method)
	r.patterns = append(r.patterns, pattern)
	r.mux.Handle(pattern, h)
}

// finish adds a 405 for each path's other methods and a 404 for everything else.
func (r *router) finish(acc *access) {
	for path, methods := range r.methods {
		if slices.Contains(methods, "GET") {
			methods = append(methods, "HEAD")
		}
		sort.Strings(methods)
		r.mux.Handle(path, handleMethodNotAllowed(acc, strings.Join(methods, ", ")))
	}
	r.mux.Handle("/", handleNotFound(acc))
}
