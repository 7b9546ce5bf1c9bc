package errand

import (
	"strings"
	"time"
)

// Permissions, as roles grant them. A permission is resource:action[:object][@*];
// the object is a permission glob (MatchGlob: '*' is any run of characters) over
// operation or channel names ("generate-*", "orders.*")
// or, for actions on jobs, "own" or "any". A missing object means every object.
// "admin" grants everything in the principal's tenant.
//
// A permission acts in the principal's own tenant unless it ends in "@*"
// (EveryTenant): then it is operator-level and acts in every tenant. Only
// workers:lease, audit:read, bridges:read, usage:read, metrics:read,
// operations:pause and oauth:rotate-key take it; admin never implies it.
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
	// PermBridgesRead reads the broker bridges acting in the tenant
	// (GET /v1/bridges); bridges:read@* reads every bridge.
	PermBridgesRead = "bridges:read"
	// PermOAuthRotate rotates errand's OAuth signing key, which every tenant's
	// tokens share: it is granted only as oauth:rotate-key@*.
	PermOAuthRotate = "oauth:rotate-key"
	// PermUsageRead reads the tenant's usage analytics (GET /v1/usage);
	// usage:read@* reads every tenant's.
	PermUsageRead = "usage:read"
	// PermMetricsRead scrapes GET /metrics, which counts every tenant's work:
	// it is granted only as metrics:read@*.
	PermMetricsRead = "metrics:read"
	// PermOperationsPause pauses and resumes an operation's leases (object:
	// operation). An operation's jobs are every tenant's, so it is granted only
	// as operations:pause[:operations]@*.
	PermOperationsPause = "operations:pause"
)

// EveryTenant ends an operator-level permission: workers:lease:*@* leases every
// tenant's jobs, audit:read@* reads every tenant's audit entries and the failed
// authentications of unknown callers.
const EveryTenant = "@*"

// Principal is the authenticated caller.
type Principal struct {
	// ID is who the caller is, unique across kinds of credential: an API key's
	// id (key_…, also for the OAuth tokens made from it), config:<name> for a key
	// of the configuration, jwt:<issuer>#<sub> for a configured issuer's token,
	// dev. A job belongs to the (tenant, ID) that submitted it.
	ID string `json:"id"`
	// Subject is the caller's name as its credential gives it (a key's id or
	// name, a token's sub): for people, not for ownership.
	Subject string   `json:"subject"`
	Tenant  string   `json:"tenant"`
	Roles   []string `json:"roles"`
	// Permissions are what the roles grant, resolved when the caller authenticated.
	Permissions []string `json:"permissions"`
	// Via says how the caller authenticated: dev, api_key, jwt, oauth, ticket.
	Via string `json:"via"`
	// Credential is what the caller authenticated with (for a ticket, the
	// credential of whoever got it), so that what it holds open ends with it.
	Credential Credential `json:"credential"`
}

// Credential is what a principal authenticated with.
type Credential struct {
	// KeyID is the API key behind the principal: the key itself, or the key an
	// OAuth token was made from. "" for other credentials.
	KeyID string `json:"key_id,omitempty"`
	// ExpiresAt is when errand stops accepting the credential (for a token,
	// its exp plus the allowed clock skew); nil for never.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// DevPrincipal is who every request runs as under `errand demo` and `--dev`.
var DevPrincipal = Principal{ID: "dev", Subject: "dev", Tenant: "default", Roles: []string{"admin"},
	Permissions: []string{PermAdmin}, Via: "dev"}

// legacyOwner marks the owner of a job stored before owners were qualified ids
// (migration 0008): legacy:<subject>, except API key ids and "dev", which were
// already unique and were kept as they were.
const legacyOwner = "legacy:"

// LegacyOwner is the owner the principal's jobs made before migration 0008
// carry, or "" when they carry its ID (API keys, dev). Such a job stays the
// principal's; owners then were bare subjects, so it is also readable by any
// other principal of the tenant with the same subject that is not an API key
// (a token's sub equal to a configured key's name) — the old data cannot tell
// them apart. Jobs made since are owned by ID alone.
func (p *Principal) LegacyOwner() string {
	if p.Subject == "" || p.Subject == "dev" || strings.HasPrefix(p.Subject, "key_") {
		return ""
	}
	return legacyOwner + p.Subject
}

// Owns reports whether the principal submitted j (j in its tenant).
func (p *Principal) Owns(j *Job) bool {
	if j.Tenant != p.Tenant || j.Owner == "" {
		return false
	}
	if j.Owner == p.ID {
		return true
	}
	legacy := p.LegacyOwner()
	return legacy != "" && j.Owner == legacy
}

// Can reports whether the principal's permissions allow action (resource:action)
// on object in its own tenant.
func (p *Principal) Can(action, object string) bool {
	for _, perm := range p.Permissions {
		if Grants(perm, action, object) {
			return true
		}
	}
	return false
}

// CanEveryTenant reports whether an operator-level permission (…@*) of the
// principal allows action on object in every tenant.
func (p *Principal) CanEveryTenant(action, object string) bool {
	for _, perm := range p.Permissions {
		if GrantsEveryTenant(perm, action, object) {
			return true
		}
	}
	return false
}

// CanAny reports whether the principal may do action on some object.
func (p *Principal) CanAny(action string) bool {
	for _, perm := range p.Permissions {
		perm = strings.TrimSuffix(perm, EveryTenant)
		if perm == PermAdmin || perm == action || strings.HasPrefix(perm, action+":") || Grants(perm, action, "") {
			return true
		}
	}
	return false
}

// CanOnJob reports whether the principal may do action (jobs:read, jobs:cancel, …)
// on j: with object "any", or "own" when it submitted j.
func (p *Principal) CanOnJob(action string, j *Job) bool {
	return p.Can(action, "any") || (p.Owns(j) && p.Can(action, "own"))
}

// Grants reports whether permission perm allows action (resource:action) on
// object in the principal's tenant. An operator-level permission (…@*) acts
// in that tenant too.
func Grants(perm, action, object string) bool {
	if perm == PermAdmin {
		return true
	}
	pp := parsePerm(strings.TrimSuffix(perm, EveryTenant))
	wantRes, wantVerb, _ := strings.Cut(action, ":")
	if (pp.res != wantRes && pp.res != "*") || (pp.verb != wantVerb && pp.verb != "*") {
		return false
	}
	return !pp.hasObj || MatchGlob(pp.obj, object)
}

// GrantsEveryTenant reports whether perm is operator-level (ends in @*) and
// allows action on object in every tenant. admin does not.
func GrantsEveryTenant(perm, action, object string) bool {
	p, ok := strings.CutSuffix(perm, EveryTenant)
	return ok && p != PermAdmin && Grants(p, action, object)
}

// perm is a parsed permission.
type perm struct {
	res, verb, obj string
	hasObj         bool
}

func parsePerm(s string) perm {
	var p perm
	var rest string
	p.res, rest, _ = strings.Cut(s, ":")
	p.verb, p.obj, p.hasObj = strings.Cut(rest, ":")
	return p
}

// Covers reports whether the permissions held imply grant: whatever grant
// allows, one of held allows too. It is the rule against privilege escalation
// (Kubernetes' for RBAC): a caller may grant only what it holds. It is sound,
// not complete: when it cannot tell (a glob that covers another in a way it
// does not see), it says no.
func Covers(held []string, grant string) bool {
	for _, h := range held {
		if covers(h, grant) {
			return true
		}
	}
	return false
}

func covers(held, grant string) bool {
	h, hEvery := strings.CutSuffix(held, EveryTenant)
	g, gEvery := strings.CutSuffix(grant, EveryTenant)
	switch {
	case gEvery && !hEvery:
		return false // every tenant is more than one
	case h == PermAdmin:
		return !hEvery && !gEvery // admin: everything in the tenant, admin included
	case g == PermAdmin:
		return false
	}
	hp, gp := parsePerm(h), parsePerm(g)
	if (hp.res != "*" && hp.res != gp.res) || (hp.verb != "*" && hp.verb != gp.verb) {
		return false
	}
	if !hp.hasObj || hp.obj == "*" {
		return true
	}
	if !gp.hasObj {
		return false
	}
	if hp.obj == "any" && gp.obj == "own" && gp.res == "jobs" && gp.verb != "submit" && gp.verb != "*" {
		return true // any job includes one's own
	}
	// Every name grant's glob matches, held's matches too, if held's matches
	// grant's glob read literally: each of grant's stars then falls inside one
	// of held's.
	return MatchGlob(hp.obj, gp.obj)
}

// MatchGlob reports whether name matches a permission glob: each '*' matches
// any run of characters (dots included) and every other character matches
// itself, so jobs:submit:generate-* covers "generate-pdf" and
// channels:publish:orders.* covers "orders.eu.paid". Permission globs are
// not channel patterns (channel.MatchPattern), where '*' matches exactly one
// '.'-separated segment. MatchGlob backtracks only to the last star, so it
// takes at most len(glob)×len(name) steps whatever the glob.
func MatchGlob(glob, name string) bool {
	p, n, star, mark := 0, 0, -1, 0
	for n < len(name) {
		switch {
		case p < len(glob) && glob[p] == '*':
			star, mark = p, n
			p++
		case p < len(glob) && glob[p] == name[n]:
			p++
			n++
		case star >= 0:
			p, mark = star+1, mark+1
			n = mark
		default:
			return false
		}
	}
	for p < len(glob) && glob[p] == '*' {
		p++
	}
	return p == len(glob)
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
