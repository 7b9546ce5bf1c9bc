package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/errandhq/errand"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// IssuerConfig is a JWT issuer whose tokens errand accepts. Exactly one of
// Secret, PublicKeys and JWKSURL says how its tokens are signed, and so which
// algorithms are accepted: a secret allows only HS256/384/512, public keys and
// JWKS only the asymmetric algorithms of their key types. alg "none" never is.
type IssuerConfig struct {
	// Issuer must equal the token's iss claim.
	Issuer string
	// Audience, when set, must contain one of the token's aud values.
	Audience []string
	// Secret is the HMAC key.
	Secret string
	// PublicKeys are PEM public keys or certificates (RSA, ECDSA, Ed25519).
	PublicKeys []string
	// JWKSURL is fetched at start, every JWKSRefresh, and at most every 10 s when a
	// token names a key id it does not hold (key rotation).
	JWKSURL string
	// JWKSRefresh defaults to one hour.
	JWKSRefresh time.Duration
	// SubjectClaim, TenantClaim and RolesClaim name the claims the principal is
	// read from. Default "sub", "tenant" and "roles"; roles may be an array or a
	// space-separated string.
	SubjectClaim, TenantClaim, RolesClaim string
	// Tenant, when set, is the tenant of every token of the issuer: a token
	// without a tenant claim is in it, one whose tenant claim names another
	// tenant is refused. Without it, tokens must carry the tenant claim.
	Tenant string
}

// issuer verifies one issuer's tokens.
type issuer struct {
	cfg     *IssuerConfig
	all     *Config
	methods []string
	key     jwt.Keyfunc // nil until start for JWKS
}

var (
	hmacAlgs  = []string{"HS256", "HS384", "HS512"}
	rsaAlgs   = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecAlgs    = []string{"ES256", "ES384", "ES512"}
	edAlgs    = []string{"EdDSA"}
	asymAlgs  = append(append(append([]string{}, rsaAlgs...), ecAlgs...), edAlgs...)
	errNoKeys = errors.New("set one of secret, public_keys and jwks_url")
)

func newIssuer(c *IssuerConfig, all *Config) (*issuer, error) {
	is := &issuer{cfg: c, all: all}
	n := 0
	if c.Secret != "" {
		n++
		is.methods = hmacAlgs
		secret := []byte(c.Secret)
		is.key = func(*jwt.Token) (any, error) { return secret, nil }
	}
	if len(c.PublicKeys) > 0 {
		n++
		set, methods, err := parsePublicKeys(c.PublicKeys)
		if err != nil {
			return nil, err
		}
		is.methods = methods
		is.key = func(*jwt.Token) (any, error) { return set, nil }
	}
	if c.JWKSURL != "" {
		n++
		is.methods = asymAlgs
	}
	if n != 1 {
		return nil, errNoKeys
	}
	return is, nil
}

// start begins fetching the issuer's JWKS (a JWKS that cannot be fetched yet is
// retried; tokens fail until it can).
func (is *issuer) start(ctx context.Context) error {
	if is.cfg.JWKSURL == "" {
		return nil
	}
	refresh := is.cfg.JWKSRefresh
	if refresh <= 0 {
		refresh = time.Hour
	}
	log := is.all.Log
	k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{is.cfg.JWKSURL}, keyfunc.Override{
		Client:            is.all.HTTPClient,
		RefreshInterval:   refresh,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(10*time.Second), 1),
		RateLimitWaitMax:  time.Second,
		HTTPTimeout:       10 * time.Second,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) { log.Warn("jwks refresh failed", "url", u, "err", err) }
		},
	})
	if err != nil {
		return fmt.Errorf("jwks %s: %w", is.cfg.JWKSURL, err)
	}
	is.key = k.KeyfuncCtx(ctx)
	return nil
}

// parsePublicKeys reads PEM keys and the algorithms their types allow.
func parsePublicKeys(pems []string) (jwt.VerificationKeySet, []string, error) {
	var set jwt.VerificationKeySet
	var methods []string
	for i, p := range pems {
		block, _ := pem.Decode([]byte(p))
		if block == nil {
			return set, nil, fmt.Errorf("public_keys[%d]: not PEM", i)
		}
		var key any
		var err error
		switch block.Type {
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		default:
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		}
		if err != nil {
			return set, nil, fmt.Errorf("public_keys[%d]: %w", i, err)
		}
		switch key.(type) {
		case *rsa.PublicKey:
			methods = append(methods, rsaAlgs...)
		case *ecdsa.PublicKey:
			methods = append(methods, ecAlgs...)
		case ed25519.PublicKey:
			methods = append(methods, edAlgs...)
		default:
			return set, nil, fmt.Errorf("public_keys[%d]: unsupported key type %T", i, key)
		}
		set.Keys = append(set.Keys, key)
	}
	return set, methods, nil
}

// verifyJWT checks a JWT from errand or a configured issuer.
func (a *Authenticator) verifyJWT(token string) (errand.Principal, error) {
	now := a.cfg.Now()
	if p, ok := a.tokens.get(token, now); ok {
		return p, nil
	}
	var unverified jwt.MapClaims
	t, _, err := jwt.NewParser().ParseUnverified(token, &unverified)
	if err != nil {
		return errand.Principal{}, unauthorized("the token is not a well-formed JWT")
	}
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 §4.1.11: a recipient that does not understand every extension
		// crit names must refuse the token, and errand understands none.
		return errand.Principal{}, unauthorized("the token's crit header names extensions errand does not understand")
	}
	iss, _ := unverified["iss"].(string)
	if iss == a.cfg.Issuer {
		return a.verify(token, a.own.keyfunc, ecAlgs[:1], iss, []string{a.cfg.Audience}, ownClaims, "oauth", ownIdentity)
	}
	for _, is := range a.issuers {
		if is.cfg.Issuer == iss {
			if is.key == nil {
				return errand.Principal{}, unauthorized("the issuer's keys have not been fetched yet")
			}
			return a.verify(token, is.key, is.methods, iss, is.cfg.Audience, is.claims(), "jwt", issuerIdentity)
		}
	}
	return errand.Principal{}, unauthorized(fmt.Sprintf("the token's issuer %q is not trusted", errand.Truncate(iss, 100)))
}

// claimNames say where a token keeps the principal.
type claimNames struct{ subject, tenant, roles, fixedTenant string }

// ownIdentity reads errand's own tokens: their sub is the API key they were made
// from, and so is their identity.
func ownIdentity(iss, sub string) string { return sub }

// issuerIdentity is the identity of a configured issuer's token: jwt:<iss>#<sub>
// (an issuer has no fragment, so no two issuers' subjects can meet).
func issuerIdentity(iss, sub string) string { return "jwt:" + iss + "#" + sub }

var ownClaims = claimNames{subject: "sub", tenant: "tenant", roles: "roles"}

func (is *issuer) claims() claimNames {
	return claimNames{subject: or(is.cfg.SubjectClaim, "sub"), tenant: or(is.cfg.TenantClaim, "tenant"),
		roles: or(is.cfg.RolesClaim, "roles"), fixedTenant: is.cfg.Tenant}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (a *Authenticator) verify(token string, key jwt.Keyfunc, methods []string, iss string, aud []string, names claimNames,
	via string, identity func(iss, sub string) string) (errand.Principal, error) {
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithIssuer(iss), jwt.WithLeeway(a.cfg.Leeway),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(a.cfg.Now)}
	if len(aud) > 0 {
		opts = append(opts, jwt.WithAudience(aud...))
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, key); err != nil {
		return errand.Principal{}, unauthorized(jwtReason(err))
	}
	sub, _ := claims[names.subject].(string)
	tenant, _ := claims[names.tenant].(string)
	if fixed := names.fixedTenant; fixed != "" {
		if tenant != "" && tenant != fixed {
			return errand.Principal{}, unauthorized(fmt.Sprintf("the token's %q claim names another tenant than its issuer's", names.tenant))
		}
		tenant = fixed
	}
	if sub == "" || tenant == "" {
		return errand.Principal{}, unauthorized(fmt.Sprintf("the token has no %q or %q claim", names.subject, names.tenant))
	}
	exp, _ := claims.GetExpirationTime()
	until := exp.Add(a.cfg.Leeway)
	cred := errand.Credential{ExpiresAt: &until}
	if via == "oauth" {
		cred.KeyID = sub
	}
	p := a.principal(identity(iss, sub), sub, tenant, rolesClaim(claims[names.roles]), via, cred)
	a.tokens.put(token, p, exp.Time)
	return p, nil
}

// rolesClaim reads roles from an array or a space-separated string.
func rolesClaim(v any) []string {
	switch r := v.(type) {
	case string:
		return strings.Fields(r)
	case []any:
		var out []string
		for _, x := range r {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// jwtReason says, without echoing the token, why it was refused.
func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token's issuer is wrong"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token is not for this audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the token has no " + missingClaims(err) + " claim"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method"):
		return "the token's algorithm (alg) is not allowed for this issuer"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "the token's signature is not valid"
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenMalformed):
		return "the token cannot be verified: its algorithm is not allowed for this issuer, or its key is unknown"
	}
	return "the token is not valid"
}

// missingClaims names the claims err says are required and missing ("exp",
// "exp and aud"), from golang-jwt's "<claim> claim is required".
func missingClaims(err error) string {
	var names []string
	for _, c := range []string{"exp", "aud", "iss", "iat", "nbf", "sub"} {
		if strings.Contains(err.Error(), c+" claim is required") {
			names = append(names, c)
		}
	}
	if len(names) == 0 {
		return "required"
	}
	return strings.Join(names, " and ")
}

// tokenCache remembers verified tokens until they expire, so a client that
// sends the same JWT on every request pays for one signature check.
type tokenCache struct {
	mu  sync.Mutex
	max int
	m   map[string]cachedToken
}

type cachedToken struct {
	p   errand.Principal
	exp time.Time
}

func newTokenCache(max int) *tokenCache { return &tokenCache{max: max, m: map[string]cachedToken{}} }

func (c *tokenCache) get(token string, now time.Time) (errand.Principal, bool) {
	c.mu.Lock()
	e, ok := c.m[token]
	c.mu.Unlock()
	if !ok || !now.Before(e.exp) {
		return errand.Principal{}, false
	}
	return e.p, true
}

func (c *tokenCache) put(token string, p errand.Principal, exp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k := range c.m { // evict an arbitrary tenth
			delete(c.m, k)
			if len(c.m) < c.max*9/10 {
				break
			}
		}
	}
	c.m[token] = cachedToken{p, exp}
}
