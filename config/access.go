package config

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"gopkg.in/yaml.v3"
)

// Auth says who may call errand and what they may do.
type Auth struct {
	// APIKeys are keys declared here, by the SHA-256 of their token (more are
	// made with `errand keys create` or POST /v1/keys).
	APIKeys []APIKey `yaml:"api_keys"`
	// JWT lists the issuers whose tokens are accepted.
	JWT []JWTIssuer `yaml:"jwt"`
	// Roles map role names to permissions, such as "jobs:submit:generate-*",
	// "jobs:read:own", "channels:subscribe:orders.*", "workers:lease:*". The role
	// "admin" always exists and grants everything in its tenant. Operator-level
	// permissions end in "@*" and act in every tenant: "workers:lease:<ops>@*"
	// (a worker for every tenant's jobs), "audit:read@*" (every tenant's entries
	// and failed authentications of unknown callers), "usage:read@*" (every
	// tenant's usage), "metrics:read@*" (GET /metrics), "oauth:rotate-key@*".
	Roles map[string][]string `yaml:"roles"`
	// OAuth tunes errand's own token endpoint (POST /v1/oauth/token).
	OAuth OAuth `yaml:"oauth"`
	// TicketTTL is how long a ticket from POST /v1/tickets may wait to be used.
	// Defaults to 60s.
	TicketTTL Duration `yaml:"ticket_ttl"`
	// Leeway is the clock skew allowed on token times. Defaults to 30s.
	Leeway Duration `yaml:"leeway"`
}

// APIKey is a key declared in the configuration.
type APIKey struct {
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the token (`printf %s "$TOKEN" | sha256sum`).
	SHA256 string   `yaml:"sha256"`
	Roles  []string `yaml:"roles"`
	Tenant string   `yaml:"tenant"`
}

// JWTIssuer is a trusted token issuer. Set one of secret, public_keys and jwks_url.
type JWTIssuer struct {
	// Issuer must equal the tokens' iss claim.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must be among the tokens' aud values (one or a list).
	Audience StringList `yaml:"audience"`
	// Secret is the HS256/384/512 key (at least 32 bytes).
	Secret string `yaml:"secret"`
	// PublicKeys are PEM public keys or certificates (RSA, ECDSA, Ed25519).
	PublicKeys []string `yaml:"public_keys"`
	// JWKSURL is fetched and followed through key rotations.
	JWKSURL string `yaml:"jwks_url"`
	// JWKSRefresh is how often the JWKS is fetched again. Defaults to 1h.
	JWKSRefresh Duration `yaml:"jwks_refresh"`
	// Tenant, when set, is the tenant of every token of the issuer: tokens
	// without the tenant claim are in it, tokens whose claim names another
	// tenant are refused. Without it, tokens must carry the claim.
	Tenant string `yaml:"tenant"`
	// Claims name where the principal is read from. Default sub, tenant, roles.
	Claims Claims `yaml:"claims"`
}

// Claims name the token claims of a principal.
type Claims struct {
	Subject string `yaml:"subject"`
	Tenant  string `yaml:"tenant"`
	Roles   string `yaml:"roles"`
}

// OAuth tunes errand's own access tokens.
type OAuth struct {
	// Issuer is their iss claim. Defaults to "errand".
	Issuer string `yaml:"issuer"`
	// Audience is their aud claim. Defaults to "errand".
	Audience string `yaml:"audience"`
	// TokenTTL is how long they last. Defaults to 15m.
	TokenTTL Duration `yaml:"token_ttl"`
	// KeyRotation is how often the signing key is replaced. Defaults to 30d.
	KeyRotation Duration `yaml:"key_rotation"`
}

// TLS serves HTTPS (and WSS, HTTP/2) from a certificate and key, read again on SIGHUP.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MinVersion is "1.2" (the default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// Audit tunes the audit log.
type Audit struct {
	// Retention is how long entries are kept. Defaults to 90d.
	Retention Duration `yaml:"retention"`
	// FailureWindow is how long failed authentications from one source are
	// gathered: the first of each reason is written at once, the rest as one
	// entry with their count when the window ends. Defaults to 1m.
	FailureWindow Duration `yaml:"failure_window"`
}

// CORS lets browser pages on other origins call the API.
type CORS struct {
	// Origins are allowed origins such as https://app.example, or "*". Empty by default.
	Origins []string `yaml:"origins"`
	// MaxAge is how long a browser may cache a preflight. Defaults to 10m.
	MaxAge Duration `yaml:"max_age"`
}

// StringList is one string or a list of them.
type StringList []string

// UnmarshalYAML reads a scalar or a sequence of scalars.
func (s *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = StringList{n.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return fmt.Errorf("line %d: expected a string or a list of strings", n.Line)
	}
	*s = list
	return nil
}

func (c *Config) accessDefaults() {
	c.Auth.TicketTTL = orD(c.Auth.TicketTTL, errand.DefaultTicketTTL)
	c.Auth.Leeway = orD(c.Auth.Leeway, errand.DefaultLeeway)
	c.Auth.OAuth.Issuer = or(c.Auth.OAuth.Issuer, errand.DefaultIssuer)
	c.Auth.OAuth.Audience = or(c.Auth.OAuth.Audience, errand.DefaultIssuer)
	c.Auth.OAuth.TokenTTL = orD(c.Auth.OAuth.TokenTTL, errand.DefaultTokenTTL)
	c.Auth.OAuth.KeyRotation = orD(c.Auth.OAuth.KeyRotation, errand.DefaultKeyRotation)
	c.Audit.Retention = orD(c.Audit.Retention, errand.DefaultAuditRetention)
	c.Audit.FailureWindow = orD(c.Audit.FailureWindow, errand.DefaultFailureWindow)
	c.HTTP.CORS.MaxAge = orD(c.HTTP.CORS.MaxAge, errand.DefaultCORSMaxAge)
	if c.HTTP.MaxStreams == 0 {
		c.HTTP.MaxStreams = 1000
	}
	c.TLS.MinVersion = or(c.TLS.MinVersion, "1.2")
}

// actions are the permissions roles may grant (before their object).
var actions = []string{errand.PermJobsSubmit, errand.PermJobsRead, errand.PermJobsCancel, errand.PermJobsRetry,
	errand.PermJobsDelete, errand.PermWorkersLease, errand.PermChanPublish, errand.PermChanSubscribe,
	errand.PermWebhooksManage, errand.PermKeysManage, errand.PermAuditRead, errand.PermBridgesRead, errand.PermUsageRead}

// everyTenantActions are the actions that take @* (operator-level), each
// named in full: a wildcard never reaches across tenants.
var everyTenantActions = []string{errand.PermWorkersLease, errand.PermAuditRead, errand.PermBridgesRead, errand.PermUsageRead,
	errand.PermMetricsRead, errand.PermOAuthRotate, errand.PermOperationsPause}

// onlyEveryTenant are the actions granted only operator-level, with why:
// what they reach is every tenant's.
var onlyEveryTenant = []struct{ action, why string }{
	{errand.PermOAuthRotate, "the signing key is every tenant's"},
	{errand.PermMetricsRead, "the metrics count every tenant's work"},
	{errand.PermOperationsPause, "an operation's leases are every tenant's"},
}

// checkPermission says what is wrong with a permission string, or "".
func checkPermission(p string) string {
	if p == errand.PermAdmin {
		return ""
	}
	if base, ok := strings.CutSuffix(p, errand.EveryTenant); ok {
		return checkEveryTenant(p, base)
	}
	for _, o := range onlyEveryTenant {
		if strings.HasPrefix(p, o.action) {
			return fmt.Sprintf("%q: %s, so it is granted only as %s%s", p, o.why, o.action, errand.EveryTenant)
		}
	}
	res, rest, _ := strings.Cut(p, ":")
	verb, obj, hasObj := strings.Cut(rest, ":")
	known := slices.ContainsFunc(actions, func(a string) bool {
		r, v, _ := strings.Cut(a, ":")
		return (res == "*" || res == r) && (verb == "*" || verb == v)
	})
	if !known {
		return fmt.Sprintf("%q is not a permission: use admin or one of %s (with an object after a third ':')", p, strings.Join(actions, ", "))
	}
	onJobs := res == "jobs" && verb != "submit" && verb != "*"
	if hasObj && onJobs && !slices.Contains([]string{"own", "any", "*"}, obj) {
		return fmt.Sprintf("%q: the object of %s:%s is own, any or *", p, res, verb)
	}
	if hasObj && obj == "" {
		return fmt.Sprintf("%q: empty object after ':'", p)
	}
	return ""
}

// checkEveryTenant checks an operator-level permission p (base@*).
func checkEveryTenant(p, base string) string {
	res, rest, _ := strings.Cut(base, ":")
	verb, obj, hasObj := strings.Cut(rest, ":")
	if !slices.Contains(everyTenantActions, res+":"+verb) {
		return fmt.Sprintf("%q: only %s take @* (every tenant), each named in full", p, strings.Join(everyTenantActions, ", "))
	}
	if hasObj && (obj == "" || (res+":"+verb != errand.PermWorkersLease && res+":"+verb != errand.PermOperationsPause)) {
		return fmt.Sprintf("%q: only workers:lease and operations:pause take an object (operations) before @*", p)
	}
	return ""
}

func (c *Config) validateAccess(bad func(path []string, format string, args ...any)) {
	a := &c.Auth
	for _, role := range sortedKeys(a.Roles) {
		if role == errand.PermAdmin {
			bad([]string{"auth", "roles", role}, "admin is built in and cannot be redefined")
		}
		for i, p := range a.Roles[role] {
			if msg := checkPermission(p); msg != "" {
				bad([]string{"auth", "roles", role, strconv.Itoa(i)}, "%s", msg)
			}
		}
	}
	names := map[string]bool{}
	for i, k := range a.APIKeys {
		at := func(f string) []string { return []string{"auth", "api_keys", strconv.Itoa(i), f} }
		if k.Name == "" || names[k.Name] {
			bad(at("name"), "every key needs a unique name")
		}
		names[k.Name] = true
		if b, err := hex.DecodeString(k.SHA256); err != nil || len(b) != 32 {
			bad(at("sha256"), "must be the 64 hex digits of the token's SHA-256")
		}
		if k.Tenant == "" {
			bad(at("tenant"), "required")
		}
		c.checkRoles(k.Roles, at("roles"), bad)
	}
	for i, j := range a.JWT {
		c.validateIssuer(&j, []string{"auth", "jwt", strconv.Itoa(i)}, bad)
	}
	if d := a.OAuth.TokenTTL; d < Duration(time.Minute) || d > Duration(24*time.Hour) {
		bad([]string{"auth", "oauth", "token_ttl"}, "must be between 1m and 24h")
	}
	if a.OAuth.KeyRotation < Duration(time.Hour) {
		bad([]string{"auth", "oauth", "key_rotation"}, "must be at least 1h")
	}
	if a.TicketTTL < Duration(time.Second) || a.TicketTTL > Duration(10*time.Minute) {
		bad([]string{"auth", "ticket_ttl"}, "must be between 1s and 10m")
	}
	if a.Leeway < 0 || a.Leeway > Duration(5*time.Minute) {
		bad([]string{"auth", "leeway"}, "must be between 0s and 5m")
	}
	c.validateTLS(bad)
	for i, o := range c.HTTP.CORS.Origins {
		if u, err := url.Parse(o); o != "*" && (err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/")) {
			bad([]string{"http", "cors", "origins", strconv.Itoa(i)}, "%q is not an origin like https://app.example or *", o)
		}
	}
	if c.HTTP.MaxStreams < 0 {
		bad([]string{"http", "max_streams_per_principal"}, "must not be negative")
	}
	if c.Audit.Retention < Duration(time.Hour) {
		bad([]string{"audit", "retention"}, "must be at least 1h")
	}
	if w := c.Audit.FailureWindow; w < Duration(time.Second) || w > Duration(time.Hour) {
		bad([]string{"audit", "failure_window"}, "must be between 1s and 1h")
	}
}

func (c *Config) checkRoles(roles []string, path []string, bad func(path []string, format string, args ...any)) {
	if len(roles) == 0 {
		bad(path, "at least one role")
	}
	for _, r := range roles {
		if _, ok := c.Auth.Roles[r]; !ok && r != errand.PermAdmin {
			bad(path, "role %q is not declared in auth.roles", r)
		}
	}
}

func (c *Config) validateIssuer(j *JWTIssuer, path []string, bad func(path []string, format string, args ...any)) {
	at := func(f string) []string { return append(slices.Clone(path), f) }
	if j.Issuer == "" {
		bad(at("issuer"), "required")
	}
	if strings.Contains(j.Issuer, "#") {
		bad(at("issuer"), "%q: an issuer has no fragment (#)", j.Issuer)
	}
	if j.Issuer == c.Auth.OAuth.Issuer {
		bad(at("issuer"), "%q is errand's own issuer (auth.oauth.issuer)", j.Issuer)
	}
	n := 0
	for _, set := range []bool{j.Secret != "", len(j.PublicKeys) > 0, j.JWKSURL != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		bad(path, "set exactly one of secret, public_keys and jwks_url")
	}
	if j.Secret != "" && len(j.Secret) < 32 {
		bad(at("secret"), "must be at least 32 bytes")
	}
	if u, err := url.Parse(j.JWKSURL); j.JWKSURL != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
		bad(at("jwks_url"), "%q is not an http(s) URL", j.JWKSURL)
	}
	if j.JWKSRefresh != 0 && j.JWKSRefresh < Duration(time.Minute) {
		bad(at("jwks_refresh"), "must be at least 1m")
	}
}

func (c *Config) validateTLS(bad func(path []string, format string, args ...any)) {
	t := &c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad([]string{"tls"}, "set both cert_file and key_file, or neither")
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		bad([]string{"tls", "min_version"}, "must be 1.2 or 1.3, not %q", t.MinVersion)
	}
}
