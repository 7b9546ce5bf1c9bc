package httpapi

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/audit"
	"github.com/errandhq/errand/auth"
)

// keyRequest is the body of POST /v1/keys.
type keyRequest struct {
	Name             string   `json:"name"`
	Roles            []string `json:"roles"`
	Tenant           string   `json:"tenant"`
	ExpiresInSeconds int64    `json:"expires_in_seconds"`
}

// secondsDuration is n seconds as a Duration, saturated at the largest one
// either way instead of wrapping around (1e11 seconds is 3,170 years; a
// Duration holds 292), so the service's bounds see what the client asked.
func secondsDuration(n int64) time.Duration {
	const most = int64(math.MaxInt64 / time.Second)
	return time.Duration(min(max(n, -most), most)) * time.Second
}

// createdKey is a new key with its token, shown this once.
type createdKey struct {
	*errand.APIKey
	Token string `json:"token"`
}

func handleCreateKey(acc *access, au *auth.Authenticator) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[keyRequest](r, false)
		if err != nil {
			return err
		}
		p := principal(r)
		k, token, err := au.CreateKey(r.Context(), &p, auth.KeyInput{Name: req.Name, Roles: req.Roles, Tenant: req.Tenant,
			ExpiresIn: secondsDuration(req.ExpiresInSeconds)})
		if err != nil {
			return err
		}
		acc.recordAct(r, "keys:create", k.ID, "name="+k.Name)
		encode(w, http.StatusCreated, createdKey{k, token})
		return nil
	})
}

func handleListKeys(acc *access, au *auth.Authenticator) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		p := principal(r)
		keys, err := au.ListKeys(r.Context(), &p)
		if err != nil {
			return err
		}
		if keys == nil {
			keys = []*errand.APIKey{}
		}
		encode(w, http.StatusOK, map[string]any{"keys": keys})
		return nil
	})
}

func handleRevokeKey(acc *access, au *auth.Authenticator) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		p := principal(r)
		k, err := au.RevokeKey(r.Context(), &p, r.PathValue("id"))
		if err != nil {
			return err
		}
		acc.recordAct(r, "keys:revoke", k.ID, "name="+k.Name)
		encode(w, http.StatusOK, k)
		return nil
	})
}

func handleRotateSigningKey(acc *access, au *auth.Authenticator) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		p := principal(r)
		kid, err := au.RotateKey(r.Context(), &p)
		if err != nil {
			return err
		}
		acc.recordAct(r, "keys:rotate-signing-key", kid, "")
		encode(w, http.StatusOK, map[string]string{"kid": kid})
		return nil
	})
}

func handleJWKS(au *auth.Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(au.JWKS())
	})
}

// handleToken is the OAuth 2.0 token endpoint, client-credentials grant
// (RFC 6749 §4.4): form-encoded, client secret basic or post. Its errors are
// RFC 6749 §5.2 JSON, which OAuth clients parse, not problems.
func handleToken(acc *access, au *auth.Authenticator) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		tok, err := exchange(r, au)
		var oe *auth.OAuthError
		switch {
		case errors.As(err, &oe):
			if oe.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="errand"`)
			}
			if acc.audit != nil {
				acc.audit.Failure(errand.AuditEntry{Action: "oauth:token", Resource: r.PostForm.Get("client_id"),
					Outcome: errand.AuditFailed, Status: oe.Status, Detail: oe.Error(), RequestID: requestID(r.Context()), Remote: remoteIP(r)},
					r.Pattern)
			}
			encode(w, oe.Status, oe)
		case err != nil:
			acc.fail(w, r, err)
		default:
			encode(w, http.StatusOK, tok)
		}
		return nil
	})
}

func exchange(r *http.Request, au *auth.Authenticator) (*auth.AccessToken, error) {
	invalid := func(code, msg string) error {
		return &auth.OAuthError{Status: http.StatusBadRequest, Code: code, Description: msg}
	}
	if err := r.ParseForm(); err != nil {
		return nil, invalid("invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	if g := r.PostForm.Get("grant_type"); g != "client_credentials" {
		return nil, invalid("unsupported_grant_type", "only grant_type=client_credentials is supported")
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: the client id and secret are form-encoded before Basic.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if r.PostForm.Has("client_secret") {
			return nil, invalid("invalid_request", "use one client authentication method, not two")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" || secret == "" {
		return nil, &auth.OAuthError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "client authentication is required"}
	}
	return au.Exchange(r.Context(), id, secret, r.PostForm.Get("scope"))
}

// ticket is the answer to POST /v1/tickets.
type ticket struct {
	Ticket    string    `json:"ticket"`
	ExpiresAt time.Time `json:"expires_at"`
}

func handleTicket(acc *access, au *auth.Authenticator) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		p := principal(r)
		t, exp, err := au.IssueTicket(r.Context(), &p)
		if err != nil {
			return err
		}
		encode(w, http.StatusCreated, ticket{t, exp})
		return nil
	})
}

func handleMe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, principal(r))
	})
}

// auditPage is a page of the audit log.
type auditPage struct {
	Entries    []*errand.AuditEntry `json:"entries"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

func handleAudit(acc *access, l *audit.Log) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		limit, err := intParam(q.Get("limit"))
		if err != nil {
			return err
		}
		p := principal(r)
		page, err := l.List(r.Context(), &p, audit.Query{Action: q.Get("action"), Subject: q.Get("subject"),
			Outcome: q.Get("outcome"), After: q.Get("after"), Before: q.Get("before"), Limit: limit})
		if err != nil {
			return err
		}
		if page.Entries == nil {
			page.Entries = []*errand.AuditEntry{}
		}
		encode(w, http.StatusOK, auditPage{page.Entries, page.Next})
		return nil
	})
}
