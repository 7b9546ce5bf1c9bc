package ui

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/audit"
	"github.com/errandhq/errand/auth"
	"github.com/errandhq/errand/bridge"
)

// accessPage is the data of /ui/access: API keys, the audit log, bridges.
type accessPage struct {
	CanKeys  bool
	Keys     []*errand.APIKey
	NewKey   *errand.APIKey
	Token    string // the new key's token, shown only now
	CanAudit bool
	Audit    []*errand.AuditEntry
	Filter   audit.Query
	Next     string
	Bridges  []bridge.Status
}

func (d *Dashboard) handleAccess(w http.ResponseWriter, r *http.Request, wh *who) error {
	return d.showAccess(w, r, wh, nil, "", http.StatusOK)
}

// showAccess renders the page (with a key just made and its token).
func (d *Dashboard) showAccess(w http.ResponseWriter, r *http.Request, wh *who, made *errand.APIKey, token string, status int) error {
	q := r.URL.Query()
	pg := accessPage{NewKey: made, Token: token, Filter: audit.Query{Action: q.Get("action"), Subject: q.Get("subject"),
		Outcome: q.Get("outcome"), Before: q.Get("before"), Limit: 50}}
	if d.d.Auth != nil && wh.p.Can(errand.PermKeysManage, "") {
		keys, err := d.d.Auth.ListKeys(r.Context(), &wh.p)
		if err != nil {
			return err
		}
		pg.CanKeys, pg.Keys = true, keys
	}
	if d.d.Audit != nil && wh.p.CanAny(errand.PermAuditRead) {
		page, err := d.d.Audit.List(r.Context(), &wh.p, pg.Filter)
		if err != nil {
			return err
		}
		pg.CanAudit, pg.Audit, pg.Next = true, page.Entries, page.Next
	}
	if wh.p.CanAny(errand.PermBridgesRead) {
		if code, body := d.forward(r, wh, http.MethodGet, "/v1/bridges", nil); code == http.StatusOK {
			var list struct {
				Bridges []bridge.Status `json:"bridges"`
			}
			_ = json.Unmarshal(body, &list)
			pg.Bridges = list.Bridges
		}
	}
	d.render(w, r, status, "access", "Access", pg)
	return nil
}

// handleCreateKey makes a key in the principal's tenant with the roles given
// (only roles it may grant: auth checks) and shows its token once.
func (d *Dashboard) handleCreateKey(w http.ResponseWriter, r *http.Request, wh *who) error {
	if d.d.Auth == nil {
		return errand.Errorf(errand.ENOTFOUND, "API keys are not served in development mode")
	}
	var roles []string
	for _, role := range strings.FieldsFunc(r.PostFormValue("roles"), func(c rune) bool { return c == ',' || c == ' ' }) {
		roles = append(roles, role)
	}
	in := auth.KeyInput{Name: strings.TrimSpace(r.PostFormValue("name")), Roles: roles}
	if days := r.PostFormValue("expires_days"); days != "" && days != "0" {
		t, err := time.ParseDuration(days + "h")
		if err != nil {
			return errand.Errorf(errand.EINVALID, "expires_days: a whole number of days")
		}
		in.ExpiresIn = t * 24
	}
	k, token, err := d.d.Auth.CreateKey(r.Context(), &wh.p, in)
	if err != nil {
		return err
	}
	d.access.Act(r, wh.p, "keys:create", k.ID, "name="+k.Name+" via=ui")
	return d.showAccess(w, r, wh, k, token, http.StatusCreated)
}

func (d *Dashboard) handleRevokeKey(w http.ResponseWriter, r *http.Request, wh *who) error {
	if d.d.Auth == nil {
		return errand.Errorf(errand.ENOTFOUND, "API keys are not served in development mode")
	}
	k, err := d.d.Auth.RevokeKey(r.Context(), &wh.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	d.access.Act(r, wh.p, "keys:revoke", k.ID, "name="+k.Name+" via=ui")
	back(w, r, "/ui/access", "Revoked "+k.Name+" ("+k.ID+").")
	return nil
}
