package errand

import (
	"strings"
	"time"
)

// Permissions, as roles grant them. A permission is resource:action[:object];
// the object is a glob over operation or channel names ("generate-*", "orders.*")
// or, for actions on jobs, "own" or "any". A missing object means every object.
// "admin" grants everything.
const (
	PermAdmin          = "admin"
	PermJobsSubmit     = "jobs:submit"        // object: operation
	PermJobsRead       = "jobs:read"          // object: own | any
	PermJobsCancel     = "jobs:cancel"        // object: own | any
	PermJobsRetry      = "jobs:retry"         // object: own | any
	PermJobsDelete     = "jobs:delete"        // object: own | any
	PermWorkersLease   = "workers:lease"      // object: operation
	PermChanPublish    = "channels:publish"   // object: channel
	PermChanSubscribe  = "channels:subscribe" // object: channel
	PermWebhooksManage = "webhooks:manage"
	PermKeysManage     = "keys:manage"
	PermAuditRead      = "audit:read"
)

// Principal is the authenticated caller.
type Principal struct {
	Subject string   `json:"subject"`
	Tenant  string   `json:"tenant"`
	Roles   []string `json:"roles"`
	// Permissions are what the roles grant, resolved when the caller authenticated.
	Permissions []string `json:"permissions"`
	// Via says how the caller authenticated: dev, api_key, jwt, ticket.
	Via string `json:"via"`
}

// DevPrincipal is who every request runs as under `errand demo` and `--dev`.
var DevPrincipal = Principal{Subject: "dev", Tenant: "default", Roles: []string{"admin"},
	Permissions: []string{PermAdmin}, Via: "dev"}

// Can reports whether the principal's permissions allow action (resource:action)
// on object.
func (p *Principal) Can(action, object string) bool {
	for _, perm := range p.Permissions {
		if Grants(perm, action, object) {
			return true
		}
	}
	return false
}

// CanAny reports whether the principal may do action on some object.
func (p *Principal) CanAny(action string) bool {
	for _, perm := range p.Permissions {
		if perm == PermAdmin || perm == action || strings.HasPrefix(perm, action+":") || Grants(perm, action, "") {
			return true
		}
	}
	return false
}

// CanOnJob reports whether the principal may do action (jobs:read, jobs:cancel, …)
// on j: with object "any", or "own" when it submitted j.
func (p *Principal) CanOnJob(action string, j *Job) bool {
	return p.Can(action, "any") || (j.Owner == p.Subject && p.Can(action, "own"))
}

// Grants reports whether permission perm allows action (resource:action) on object.
func Grants(perm, action, object string) bool {
	if perm == PermAdmin {
		return true
	}
	res, rest, _ := strings.Cut(perm, ":")
	verb, obj, hasObj := strings.Cut(rest, ":")
	wantRes, wantVerb, _ := strings.Cut(action, ":")
	if (res != wantRes && res != "*") || (verb != wantVerb && verb != "*") {
		return false
	}
	return !hasObj || Glob(obj, object)
}

// Glob reports whether name matches pattern, where each * matches any run of
// characters (dots included) and every other character matches itself. It
// backtracks only to the last star, so it takes at most len(pattern)×len(name)
// steps whatever the pattern.
func Glob(pattern, name string) bool {
	p, n, star, mark := 0, 0, -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p, mark = star+1, mark+1
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Deny is the error for a refused action: 403 to the client, a denial in the
// audit log.
func Deny(action, resource string) *Error {
	return &Error{Code: EFORBIDDEN, Message: "not allowed: " + action + " on " + resource,
		Action: action, Resource: resource}
}

// Hidden is a not-found answer for a resource that exists in another tenant or
// that the caller may not see: the client cannot tell it from a missing one, the
// audit log records the denial.
func Hidden(code, message, action, resource string) *Error {
	return &Error{Code: code, Message: message, Action: action, Resource: resource}
}

// APIKey is a long-lived credential: the bearer token ek_… is shown once, only
// its SHA-256 is kept.
type APIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Tenant    string     `json:"tenant"`
	Roles     []string   `json:"roles"`
	Hash      string     `json:"-"`
	Prefix    string     `json:"prefix"` // the token's first characters, to recognise it
	CreatedBy string     `json:"created_by,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	LastUsed  *time.Time `json:"last_used_at,omitempty"`
}

// Active reports whether the key may authenticate at now.
func (k *APIKey) Active(now time.Time) bool {
	return k.RevokedAt == nil && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

// Audit outcomes.
const (
	AuditDenied = "denied" // authenticated, not allowed (403, or a hidden 404)
	AuditFailed = "failed" // authentication failed (401)
	AuditOK     = "ok"     // an administrative act that happened
)

// AuditEntry is one record of the append-only audit log.
type AuditEntry struct {
	Seq       int64     `json:"id"`
	Time      time.Time `json:"time"`
	Tenant    string    `json:"tenant,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	Action    string    `json:"action"`
	Resource  string    `json:"resource,omitempty"`
	Outcome   string    `json:"outcome"`
	Status    int       `json:"status,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	Remote    string    `json:"remote,omitempty"`
}
