package httpapi

import (
	"net/http"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/bridge"
)

// bridgeList is GET /v1/bridges's answer.
type bridgeList struct {
	Bridges []bridge.Status `json:"bridges"`
}

// handleBridges shows the broker bridges: those acting in the caller's
// tenant with bridges:read, every one with bridges:read@*.
func handleBridges(acc *access, bs *bridge.Bridges) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		p := principal(r)
		every := p.CanEveryTenant(errand.PermBridgesRead, "")
		if !every && !p.Can(errand.PermBridgesRead, "") {
			return errand.Deny(errand.PermBridgesRead, "bridges")
		}
		list := []bridge.Status{}
		if bs != nil {
			list = bs.Status(p.Tenant, every)
		}
		encode(w, http.StatusOK, bridgeList{list})
		return nil
	})
}

// bridgeNote is how /readyz shows a bridge that is not connected: the node
// stays ready (its API works; the bridge's backlog waits in the log).
type bridgeNote struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	LastError string `json:"last_error,omitempty"`
}

// bridgesDown lists the bridges that are not connected (nil for none).
func bridgesDown(bs *bridge.Bridges) []bridgeNote {
	if bs == nil {
		return nil
	}
	var out []bridgeNote
	for _, s := range bs.Down() {
		out = append(out, bridgeNote{s.Name, s.State, s.LastError})
	}
	return out
}
