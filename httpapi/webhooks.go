package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/webhook"
)

// endpointRequest is the body of POST /v1/webhooks and PATCH /v1/webhooks/{id}.
type endpointRequest struct {
	URL         *string   `json:"url"`
	Description *string   `json:"description"`
	Events      *[]string `json:"events"`
	Disabled    *bool     `json:"disabled"`
	RateLimit   *int      `json:"rate_limit"`
}

func (e endpointRequest) input() webhook.EndpointInput {
	return webhook.EndpointInput{URL: e.URL, Description: e.Description, Events: e.Events, Disabled: e.Disabled, RateLimit: e.RateLimit}
}

// endpointWithSecret is an endpoint as created or rotated: the only answers
// that show its secret.
type endpointWithSecret struct {
	*errand.Endpoint
	Secret string `json:"secret"`
}

// endpointList is the answer to GET /v1/webhooks.
type endpointList struct {
	Endpoints []*errand.Endpoint `json:"endpoints"`
}

// deliveryList is a page of deliveries.
type deliveryList struct {
	Deliveries []*errand.Delivery `json:"deliveries"`
	NextCursor *string            `json:"next_cursor"`
}

// recoverRequest is the body of POST /v1/webhooks/{id}/recover.
type recoverRequest struct {
	Since time.Time `json:"since"`
}

// recovered is the answer to a recover.
type recovered struct {
	Redelivering int `json:"redelivering"`
}

func handleCreateEndpoint(log *slog.Logger, hooks *webhook.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[endpointRequest](r, false)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		ep, err := hooks.Create(r.Context(), principal(r), req.input())
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		w.Header().Set("Location", "/v1/webhooks/"+ep.ID)
		recordAct(r, "webhooks:create", ep.ID, "url="+ep.URL)
		encode(w, http.StatusCreated, endpointWithSecret{ep, ep.Secret})
	})
}

func handleListEndpoints(log *slog.Logger, hooks *webhook.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		eps, err := hooks.List(r.Context(), principal(r))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		encode(w, http.StatusOK, endpointList{eps})
	})
}

func handleGetEndpoint(log *slog.Logger, hooks *webhook.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep, err := hooks.Get(r.Context(), principal(r), r.PathValue("id"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		encode(w, http.StatusOK, ep)
	})
}

func handleUpdateEndpoint(log *slog.Logger, hooks *webhook.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[endpointRequest](r, false)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		ep, err := hooks.Update(r.Context(), principal(r), r.PathValue("id"), req.input())
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		recordAct(r, "webhooks:update", ep.ID, "url="+ep.URL)
		encode(w, http.StatusOK, ep)
	})
}

func handleDeleteEndpoint(log *slog.Logger, hooks *webhook.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := hooks.Delete(r.Context(), principal(r), r.PathValue("id")); err != nil {
			writeError(w, r, log, err)
			return
		}
		recordAct(r, "webhooks:delete", r.PathValue("id"), "")
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleRotateSecret(log *slog.Logger, hooks *webhook.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep, err := hooks.RotateSecret(r.Context(), principal(r), r.PathValue("id"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		recordAct(r, "webhooks:rotate-secret", ep.ID, "")
		encode(w, http.StatusOK, endpointWithSecret{ep, ep.Secret})
	})
}

func handleRecover(log *slog.Logger, hooks *webhook.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[recoverRequest](r, false)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		n, err := hooks.Recover(r.Context(), principal(r), r.PathValue("id"), req.Since)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		recordAct(r, "webhooks:recover", r.PathValue("id"), fmt.Sprintf("%d deliveries", n))
		encode(w, http.StatusAccepted, recovered{n})
	})
}

// handleListDeliveries pages deliveries: an endpoint's (GET
// /v1/webhooks/{id}/deliveries) or, by ?job_id=, a job's (GET /v1/deliveries).
func handleListDeliveries(log *slog.Logger, hooks *webhook.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, err := intParam(q.Get("limit"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		ds, next, err := hooks.Deliveries(r.Context(), principal(r), webhook.DeliveryPage{EndpointID: r.PathValue("id"),
			JobID: q.Get("job_id"), Status: errand.DeliveryStatus(q.Get("status")), Limit: limit, Cursor: q.Get("cursor")})
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		out := deliveryList{Deliveries: ds}
		if ds == nil {
			out.Deliveries = []*errand.Delivery{}
		}
		if next != "" {
			out.NextCursor = &next
		}
		encode(w, http.StatusOK, out)
	})
}

func handleGetDelivery(log *slog.Logger, hooks *webhook.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x, err := hooks.Delivery(r.Context(), principal(r), r.PathValue("id"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		encode(w, http.StatusOK, x)
	})
}

func handleRedeliver(log *slog.Logger, hooks *webhook.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x, err := hooks.Redeliver(r.Context(), principal(r), r.PathValue("id"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		recordAct(r, "webhooks:redeliver", r.PathValue("id"), "")
		encode(w, http.StatusAccepted, x)
	})
}

func handleCallbackSecret(log *slog.Logger, hooks *webhook.Service, rotate bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		get := hooks.CallbackSecret
		if rotate {
			get = hooks.RotateCallbackSecret
		}
		s, err := get(r.Context(), principal(r))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		if rotate {
			recordAct(r, "webhooks:rotate-callback-secret", "callback secret", "")
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, s)
	})
}
