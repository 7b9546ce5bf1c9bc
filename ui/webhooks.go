package ui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/webhook"
)

// webhooksPage is the data of /ui/webhooks: the tenant's endpoints, the
// create form, and the callback secret.
type webhooksPage struct {
	Off       bool
	Endpoints []*errand.Endpoint
	Callback  *webhook.CallbackSecret
	Rotated   bool
}

func (d *Dashboard) hooks() (*webhook.Service, error) {
	if d.d.Webhooks == nil {
		return nil, errand.Errorf(errand.ENOTFOUND, "webhooks are off on this server")
	}
	return d.d.Webhooks, nil
}

func (d *Dashboard) handleWebhooks(w http.ResponseWriter, r *http.Request, wh *who) error {
	hooks, err := d.hooks()
	if err != nil {
		return err
	}
	eps, err := hooks.List(r.Context(), wh.p)
	if err != nil {
		return err
	}
	cb, err := hooks.CallbackSecret(r.Context(), wh.p)
	if err != nil {
		return err
	}
	d.render(w, r, http.StatusOK, "webhooks", "Webhooks", webhooksPage{Endpoints: eps, Callback: cb})
	return nil
}

// endpointInput reads the endpoint form; fields left out are left as they are.
func endpointInput(r *http.Request) webhook.EndpointInput {
	var in webhook.EndpointInput
	if r.PostForm.Has("url") {
		u := strings.TrimSpace(r.PostForm.Get("url"))
		in.URL = &u
	}
	if r.PostForm.Has("description") {
		desc := r.PostForm.Get("description")
		in.Description = &desc
	}
	if r.PostForm.Has("events") {
		events := []string{}
		for _, e := range strings.FieldsFunc(r.PostForm.Get("events"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' }) {
			events = append(events, e)
		}
		in.Events = &events
	}
	if r.PostForm.Has("rate_limit") {
		n, _ := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("rate_limit")))
		in.RateLimit = &n
	}
	return in
}

// endpointPage is the data of /ui/webhooks/{id}.
type endpointPage struct {
	Endpoint   *errand.Endpoint
	Secret     string // after create or rotate only
	Deliveries []*errand.Delivery
	Next       string
	Status     string
}

func (d *Dashboard) handleCreateEndpoint(w http.ResponseWriter, r *http.Request, wh *who) error {
	hooks, err := d.hooks()
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return errand.Errorf(errand.EINVALID, "the form does not parse: %v", err)
	}
	ep, err := hooks.Create(r.Context(), wh.p, endpointInput(r))
	if err != nil {
		return err
	}
	d.access.Act(r, wh.p, "webhooks:create", ep.ID, "url="+ep.URL+" via=ui")
	return d.showEndpoint(w, r, wh, ep, ep.Secret, http.StatusCreated)
}

func (d *Dashboard) handleEndpoint(w http.ResponseWriter, r *http.Request, wh *who) error {
	hooks, err := d.hooks()
	if err != nil {
		return err
	}
	ep, err := hooks.Get(r.Context(), wh.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return d.showEndpoint(w, r, wh, ep, "", http.StatusOK)
}

// showEndpoint renders an endpoint with a page of its deliveries (and the
// secret, right after it was made).
func (d *Dashboard) showEndpoint(w http.ResponseWriter, r *http.Request, wh *who, ep *errand.Endpoint, secret string, status int) error {
	q := r.URL.Query()
	pg := endpointPage{Endpoint: ep, Secret: secret, Status: q.Get("status")}
	ds, next, err := d.d.Webhooks.Deliveries(r.Context(), wh.p, webhook.DeliveryPage{EndpointID: ep.ID,
		Status: errand.DeliveryStatus(pg.Status), Cursor: q.Get("cursor"), Limit: 25})
	if err != nil {
		return err
	}
	pg.Deliveries, pg.Next = ds, next
	d.render(w, r, status, "endpoint", ep.URL, pg)
	return nil
}

// handleEndpointAction edits, disables, enables, rotates the secret of,
// recovers or deletes an endpoint.
func (d *Dashboard) handleEndpointAction(w http.ResponseWriter, r *http.Request, wh *who) error {
	hooks, err := d.hooks()
	if err != nil {
		return err
	}
	id, action := r.PathValue("id"), r.PathValue("action")
	to := "/ui/webhooks/" + url.PathEscape(id)
	switch action {
	case "edit", "disable", "enable":
		in := webhook.EndpointInput{}
		if action == "edit" {
			if err := r.ParseForm(); err != nil {
				return errand.Errorf(errand.EINVALID, "the form does not parse: %v", err)
			}
			in = endpointInput(r)
		} else {
			off := action == "disable"
			in.Disabled = &off
		}
		ep, err := hooks.Update(r.Context(), wh.p, id, in)
		if err != nil {
			return err
		}
		d.access.Act(r, wh.p, "webhooks:update", ep.ID, "url="+ep.URL+" via=ui")
		back(w, r, to, "Saved.")
	case "rotate-secret":
		ep, err := hooks.RotateSecret(r.Context(), wh.p, id)
		if err != nil {
			return err
		}
		d.access.Act(r, wh.p, "webhooks:rotate-secret", ep.ID, "via=ui")
		return d.showEndpoint(w, r, wh, ep, ep.Secret, http.StatusOK)
	case "recover":
		since, err := parseWhen(r.PostFormValue("since"))
		if err != nil {
			return errand.Errorf(errand.EINVALID, "since: %v", err)
		}
		n, err := hooks.Recover(r.Context(), wh.p, id, since)
		if err != nil {
			return err
		}
		d.access.Act(r, wh.p, "webhooks:recover", id, "since="+since.Format("2006-01-02T15:04:05Z")+" via=ui")
		back(w, r, to, "Redelivering "+strconv.Itoa(n)+" failed deliveries.")
	case "delete":
		if err := hooks.Delete(r.Context(), wh.p, id); err != nil {
			return err
		}
		d.access.Act(r, wh.p, "webhooks:delete", id, "via=ui")
		back(w, r, "/ui/webhooks", "Deleted the endpoint.")
	default:
		return errand.Errorf(errand.ENOTFOUND, "no action %q on endpoints", action)
	}
	return nil
}

func (d *Dashboard) handleRedeliver(w http.ResponseWriter, r *http.Request, wh *who) error {
	hooks, err := d.hooks()
	if err != nil {
		return err
	}
	x, err := hooks.Redeliver(r.Context(), wh.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	d.access.Act(r, wh.p, "webhooks:redeliver", x.ID, "via=ui")
	to := "/ui/webhooks"
	if x.EndpointID != "" {
		to += "/" + url.PathEscape(x.EndpointID)
	}
	back(w, r, to, "Redelivering "+x.ID+".")
	return nil
}

func (d *Dashboard) handleRotateCallback(w http.ResponseWriter, r *http.Request, wh *who) error {
	hooks, err := d.hooks()
	if err != nil {
		return err
	}
	if _, err := hooks.RotateCallbackSecret(r.Context(), wh.p); err != nil {
		return err
	}
	d.access.Act(r, wh.p, "webhooks:rotate-callback-secret", wh.p.Tenant, "via=ui")
	back(w, r, "/ui/webhooks", "Rotated the callback secret; the previous one signs too for a while.")
	return nil
}
