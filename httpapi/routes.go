package httpapi

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// addRoutes registers every route of the API.
func addRoutes(mux *http.ServeMux, d Deps, c *Config) {
	r := router{mux: mux, methods: map[string][]string{}}
	acc := &access{dev: c.Dev, auth: d.Auth, audit: d.Audit, log: d.Log,
		streams: &streamLimiter{max: c.MaxStreams, open: map[string]int{}}}
	api := func(h http.Handler) http.Handler { return acc.authenticate(false, limitBody(c.MaxBodyBytes, h)) }
	stream := func(h http.Handler) http.Handler { return acc.authenticate(true, limitBody(c.MaxBodyBytes, h)) }
	upload := func(h http.Handler) http.Handler { return acc.authenticate(false, limitBody(c.MaxArtifactBytes, h)) }
	public := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyAccess, acc)))
		})
	}

	r.handle("GET /healthz", handleHealth())
	r.handle("GET /readyz", handleReady(d.Log, d.Store))

	r.handle("POST /v1/jobs", api(handleSubmit(d.Log, d.Jobs, c)))
	r.handle("POST /v1/job-batches", api(handleSubmitBatch(d.Log, d.Jobs)))
	r.handle("GET /v1/jobs", api(handleListJobs(d.Log, d.Jobs)))
	r.handle("GET /v1/jobs/{id}", api(handleGetJob(d.Log, d.Jobs, c)))
	r.handle("DELETE /v1/jobs/{id}", api(handleDeleteJob(d.Log, d.Jobs)))
	r.handle("POST /v1/jobs/{id}/cancel", api(handleCancelJob(d.Log, d.Jobs)))
	r.handle("POST /v1/jobs/{id}/retry", api(handleRetryJob(d.Log, d.Jobs)))
	r.handle("GET /v1/jobs/{id}/events", stream(handleJobEvents(d.Log, d.Jobs, d.Store, d.Hub, d.Streams, c)))
	r.handle("GET /v1/jobs/{id}/artifacts/{name}", api(handleGetArtifact(d.Log, d.Jobs)))
	r.handle("GET /v1/operations", api(handleListOperations(d.Log, d.Jobs)))
	r.handle("GET /v1/operations/{name}", api(handleGetOperation(d.Log, d.Jobs)))

	r.handle("GET /v1/ws", stream(handleWS(d, c)))
	r.handle("GET /v1/channels", api(handleListChannels(d.Channels)))
	r.handle("POST /v1/channels/{channel}/events", api(handlePublish(d.Log, d.Channels)))
	r.handle("GET /v1/channels/{channel}/events", stream(handleChannelEvents(d.Log, d.Channels, d.Store, d.Hub, d.Streams, c)))

	if h := d.Webhooks; h != nil {
		r.handle("POST /v1/webhooks", api(handleCreateEndpoint(d.Log, h)))
		r.handle("GET /v1/webhooks", api(handleListEndpoints(d.Log, h)))
		r.handle("GET /v1/webhooks/{id}", api(handleGetEndpoint(d.Log, h)))
		r.handle("PATCH /v1/webhooks/{id}", api(handleUpdateEndpoint(d.Log, h)))
		r.handle("DELETE /v1/webhooks/{id}", api(handleDeleteEndpoint(d.Log, h)))
		r.handle("POST /v1/webhooks/{id}/rotate-secret", api(handleRotateSecret(d.Log, h)))
		r.handle("POST /v1/webhooks/{id}/recover", api(handleRecover(d.Log, h)))
		r.handle("GET /v1/webhooks/{id}/deliveries", api(handleListDeliveries(d.Log, h)))
		r.handle("GET /v1/deliveries", api(handleListDeliveries(d.Log, h)))
		r.handle("GET /v1/deliveries/{id}", api(handleGetDelivery(d.Log, h)))
		r.handle("POST /v1/deliveries/{id}/redeliver", api(handleRedeliver(d.Log, h)))
		r.handle("GET /v1/callback-secret", api(handleCallbackSecret(d.Log, h, false)))
		r.handle("POST /v1/callback-secret/rotate", api(handleCallbackSecret(d.Log, h, true)))
	}

	if au := d.Auth; au != nil {
		r.handle("POST /v1/oauth/token", public(limitBody(c.MaxBodyBytes, handleToken(d.Log, au))))
		r.handle("GET /.well-known/jwks.json", handleJWKS(au))
		r.handle("POST /v1/oauth/rotate-key", api(handleRotateSigningKey(d.Log, au)))
		r.handle("POST /v1/tickets", api(handleTicket(d.Log, au)))
		r.handle("POST /v1/keys", api(handleCreateKey(d.Log, au)))
		r.handle("GET /v1/keys", api(handleListKeys(d.Log, au)))
		r.handle("DELETE /v1/keys/{id}", api(handleRevokeKey(d.Log, au)))
	}
	if d.Audit != nil {
		r.handle("GET /v1/audit", api(handleAudit(d.Log, d.Audit)))
	}
	r.handle("GET /v1/me", api(handleMe()))

	r.handle("POST /v1/leases", api(handleLease(d.Log, d.Queue)))
	r.handle("POST /v1/leases/complete", api(worker(handleCompleteBatch(d.Log, d.Queue))))
	r.handle("POST /v1/leases/{lease_id}/heartbeat", api(worker(handleHeartbeat(d.Log, d.Queue))))
	r.handle("POST /v1/leases/{lease_id}/complete", api(worker(handleComplete(d.Log, d.Queue))))
	r.handle("POST /v1/leases/{lease_id}/fail", api(worker(handleFail(d.Log, d.Queue))))
	r.handle("POST /v1/leases/{lease_id}/release", api(worker(handleRelease(d.Log, d.Queue))))
	r.handle("PUT /v1/leases/{lease_id}/artifacts/{name}", upload(worker(handlePutArtifact(d.Log, d.Queue))))

	for _, op := range d.Jobs.Operations() {
		if op.Route != "" {
			r.handle("POST "+op.Route, api(handleRouteSubmit(d.Log, d.Jobs, c, op.Name)))
		}
	}
	r.finish(d)
}

// router registers routes and answers wrong methods and unknown paths with problems.
type router struct {
	mux     *http.ServeMux
	methods map[string][]string
}

func (r *router) handle(pattern string, h http.Handler) {
	method, path, _ := strings.Cut(pattern, " ")
	r.methods[path] = append(r.methods[path], method)
	r.mux.Handle(pattern, h)
}

// finish adds a 405 for each path's other methods and a 404 for everything else.
func (r *router) finish(d Deps) {
	for path, methods := range r.methods {
		if slices.Contains(methods, "GET") {
			methods = append(methods, "HEAD")
		}
		sort.Strings(methods)
		r.mux.Handle(path, handleMethodNotAllowed(d.Log, strings.Join(methods, ", ")))
	}
	r.mux.Handle("/", handleNotFound(d.Log))
}
