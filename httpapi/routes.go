package httpapi

import (
	"net/http"
	"slices"
	"sort"
	"strings"
)

// addRoutes registers every route of the API.
func addRoutes(mux *http.ServeMux, d Deps, c *Config) {
	r := router{mux: mux, methods: map[string][]string{}}
	api := func(h http.Handler) http.Handler { return authenticate(c.Dev, limitBody(c.MaxBodyBytes, h)) }
	upload := func(h http.Handler) http.Handler { return authenticate(c.Dev, limitBody(c.MaxArtifactBytes, h)) }

	r.handle("GET /healthz", handleHealth())
	r.handle("GET /readyz", handleReady(d.Log, d.Store))

	r.handle("POST /v1/jobs", api(handleSubmit(d.Log, d.Jobs, c)))
	r.handle("GET /v1/jobs", api(handleListJobs(d.Log, d.Jobs)))
	r.handle("GET /v1/jobs/{id}", api(handleGetJob(d.Log, d.Jobs, c)))
	r.handle("DELETE /v1/jobs/{id}", api(handleDeleteJob(d.Log, d.Jobs)))
	r.handle("POST /v1/jobs/{id}/cancel", api(handleCancelJob(d.Log, d.Jobs)))
	r.handle("POST /v1/jobs/{id}/retry", api(handleRetryJob(d.Log, d.Jobs)))
	r.handle("GET /v1/jobs/{id}/events", api(handleJobEvents(d.Log, d.Jobs, d.Store, d.Hub, d.Streams)))
	r.handle("GET /v1/jobs/{id}/artifacts/{name}", api(handleGetArtifact(d.Log, d.Jobs)))
	r.handle("GET /v1/operations", api(handleListOperations(d.Jobs)))
	r.handle("GET /v1/operations/{name}", api(handleGetOperation(d.Log, d.Jobs)))

	r.handle("GET /v1/ws", authenticate(c.Dev, handleWS(d)))
	r.handle("GET /v1/channels", api(handleListChannels(d.Channels)))
	r.handle("POST /v1/channels/{channel}/events", api(handlePublish(d.Log, d.Channels)))
	r.handle("GET /v1/channels/{channel}/events", api(handleChannelEvents(d.Log, d.Channels, d.Store, d.Hub, d.Streams)))

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

	r.handle("POST /v1/leases", api(handleLease(d.Log, d.Queue)))
	r.handle("POST /v1/leases/complete", api(handleCompleteBatch(d.Log, d.Queue)))
	r.handle("POST /v1/leases/{lease_id}/heartbeat", api(handleHeartbeat(d.Log, d.Queue)))
	r.handle("POST /v1/leases/{lease_id}/complete", api(handleComplete(d.Log, d.Queue)))
	r.handle("POST /v1/leases/{lease_id}/fail", api(handleFail(d.Log, d.Queue)))
	r.handle("POST /v1/leases/{lease_id}/release", api(handleRelease(d.Log, d.Queue)))
	r.handle("PUT /v1/leases/{lease_id}/artifacts/{name}", upload(handlePutArtifact(d.Log, d.Queue)))

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
