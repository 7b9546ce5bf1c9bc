package httpapi

import (
	"fmt"
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

func handleCreateEndpoint(acc *access, hooks *webhook.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[endpointRequest](r, false)
		if err != nil {
			return err
		}
		ep, err := hooks.Create(r.Context(), principal(r), req.input())
		if err != nil {
			return err
		}
		w.Header().Set("Location", "/v1/webhooks/"+ep.ID)
		acc.recordAct(r, "webhooks:create", ep.ID, "url="+ep.URL)
		encode(w, http.StatusCreated, endpointWithSecret{ep, ep.Secret})
		return nil
	})
}

func handleListEndpoints(acc *access, hooks *webhook.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		eps, err := hooks.List(r.Context(), principal(r))
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, endpointList{eps})
		return nil
	})
}

func handleGetEndpoint(acc *access, hooks *webhook.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		ep, err := hooks.Get(r.Context(), principal(r), r.PathValue("id"))
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, ep)
		return nil
	})
}

func handleUpdateEndpoint(acc *access, hooks *webhook.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[endpointRequest](r, false)
		if err != nil {
			return err
		}
		ep, err := hooks.Update(r.Context(), principal(r), r.PathValue("id"), req.input())
		if err != nil {
			return err
		}
		acc.recordAct(r, "webhooks:update", ep.ID, "url="+ep.URL)
		encode(w, http.StatusOK, ep)
		return nil
	})
}

func handleDeleteEndpoint(acc *access, hooks *webhook.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := hooks.Delete(r.Context(), principal(r), r.PathValue("id")); err != nil {
			return err
		}
		acc.recordAct(r, "webhooks:delete", r.PathValue("id"), "")
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func handleRotateSecret(acc *access, hooks *webhook.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		ep, err := hooks.RotateSecret(r.Context(), principal(r), r.PathValue("id"))
		if err != nil {
			return err
		}
		acc.recordAct(r, "webhooks:rotate-secret", ep.ID, "")
		encode(w, http.StatusOK, endpointWithSecret{ep, ep.Secret})
		return nil
	})
}

func handleRecover(acc *access, hooks *webhook.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[recoverRequest](r, false)
		if err != nil {
			return err
		}
		n, err := hooks.Recover(r.Context(), principal(r), r.PathValue("id"), req.Since)
		if err != nil {
			return err
		}
		acc.recordAct(r, "webhooks:recover", r.PathValue("id"), fmt.Sprintf("%d deliveries", n))
		encode(w, http.StatusAccepted, recovered{n})
		return nil
	})
}

// handleListDeliveries pages deliveries: an endpoint's (GET
// /v1/webhooks/{id}/deliveries) or, by ?job_id=, a job's (GET /v1/deliveries).
func handleListDeliveries(acc *access, hooks *webhook.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		limit, err := intParam(q.Get("limit"))
		if err != nil {
			return err
		}
		ds, next, err := hooks.Deliveries(r.Context(), principal(r), webhook.DeliveryPage{EndpointID: r.PathValue("id"),
			JobID: q.Get("job_id"), Status: errand.DeliveryStatus(q.Get("status")), Limit: limit, Cursor: q.Get("cursor")})
		if err != nil {
			return err
		}
		out := deliveryList{Deliveries: ds}
		if ds == nil {
			out.Deliveries = []*errand.Delivery{}
		}
		if next != "" {
			out.NextCursor = &next
		}
		encode(w, http.StatusOK, out)
		return nil
	})
}

func handleGetDelivery(acc *access, hooks *webhook.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		x, err := hooks.Delivery(r.Context(), principal(r), r.PathValue("id"))
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, x)
		return nil
	})
}

func handleRedeliver(acc *access, hooks *webhook.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		x, err := hooks.Redeliver(r.Context(), principal(r), r.PathValue("id"))
		if err != nil {
			return err
		}
		acc.recordAct(r, "webhooks:redeliver", r.PathValue("id"), "")
		encode(w, http.StatusAccepted, x)
		return nil
	})
}

func handleCallbackSecret(acc *access, hooks *webhook.Service, rotate bool) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		get := hooks.CallbackSecret
		if rotate {
			get = hooks.RotateCallbackSecret
		}
		s, err := get(r.Context(), principal(r))
		if err != nil {
			return err
		}
		if rotate {
			acc.recordAct(r, "webhooks:rotate-callback-secret", "callback secret", "")
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, s)
		return nil
	})
}
