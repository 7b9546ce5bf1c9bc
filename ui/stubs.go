package ui

import (
	"net/http"

	"github.com/errandhq/errand"
)

func notYet(w http.ResponseWriter, r *http.Request, wh *who) error {
	return errand.Errorf(errand.ENOTFOUND, "not yet")
}

func (d *Dashboard) handleChannels(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
func (d *Dashboard) handleChannel(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
func (d *Dashboard) handleChannelLive(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
func (d *Dashboard) handlePublish(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
func (d *Dashboard) handleWebhooks(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
func (d *Dashboard) handleCreateEndpoint(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
func (d *Dashboard) handleEndpoint(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
func (d *Dashboard) handleEndpointAction(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
func (d *Dashboard) handleRedeliver(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
func (d *Dashboard) handleRotateCallback(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
func (d *Dashboard) handleAccess(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
func (d *Dashboard) handleCreateKey(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
func (d *Dashboard) handleRevokeKey(w http.ResponseWriter, r *http.Request, wh *who) error {
	return notYet(w, r, wh)
}
