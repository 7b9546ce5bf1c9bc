// Package auth authenticates callers and says what they may do: API keys (ek_…,
// kept as SHA-256 hashes), JWTs from configured issuers (shared secrets, PEM
// public keys, JWKS URLs), errand's own OAuth 2.0 client-credentials tokens
// (signed with a rotating ES256 key published as a JWKS), single-use tickets for
// browsers, and the role → permission policy.
package auth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/lifecycle"
	"github.com/errandhq/errand/storage"
)

// Config tunes authentication. The zero value accepts only errand's own tokens
// and API keys created at run time, with the built-in admin role.
type Config struct {
	// Roles maps role names to the permissions they grant. "admin" always grants
	// everything.
	Roles map[string][]string
	// Keys are API keys from the configuration (by token SHA-256).
	Keys []ConfigKey
	// Issuers are the JWT issuers whose tokens are accepted.
	Issuers []IssuerConfig
	// Issuer is the iss claim of errand's own tokens. Defaults to "errand".
	Issuer string
	// Audience is the aud claim of errand's own tokens. Defaults to "errand".
	Audience string
	// TokenTTL is how long an access token from the token endpoint lasts.
	// Defaults to 15 minutes.
	TokenTTL time.Duration
	// KeyRotation is how often errand makes a new signing key; the old one stays
	// published until the last token it signed has expired. Defaults to 30 days.
	KeyRotation time.Duration
	// TicketTTL is how long a ticket may wait to be used. Defaults to 60 seconds.
	TicketTTL time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat. Defaults to 30 seconds.
	Leeway time.Duration
	// KeyCacheTTL is how long a looked-up API key is trusted before it is read
	// again (a key revoked on another node stops working within it). Defaults to
	// 10 seconds.
	KeyCacheTTL time.Duration
	// HTTPClient fetches JWKS documents. Defaults to a client with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Log receives warnings (JWKS refresh failures). Defaults to discarding.
	Log *slog.Logger
}

// ConfigKey is an API key declared in the configuration.
type ConfigKey struct {
	Name   string
	SHA256 string // hex SHA-256 of the token
	Tenant string
	Roles  []string
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.Issuer = cmp.Or(out.Issuer, errand.DefaultIssuer)
	out.Audience = cmp.Or(out.Audience, errand.DefaultIssuer)
	out.TokenTTL = cmp.Or(out.TokenTTL, errand.DefaultTokenTTL)
	out.KeyRotation = cmp.Or(out.KeyRotation, errand.DefaultKeyRotation)
	out.TicketTTL = cmp.Or(out.TicketTTL, errand.DefaultTicketTTL)
	out.Leeway = cmp.Or(out.Leeway, errand.DefaultLeeway)
	out.KeyCacheTTL = cmp.Or(out.KeyCacheTTL, 10*time.Second)
	if out.HTTPClient == nil {
		out.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	if out.Log == nil {
		out.Log = slog.New(slog.DiscardHandler)
	}
	return out
}

// Authenticator turns credentials into principals.
type Authenticator struct {
	store   storage.Store
	cfg     Config
	keys    *keyCache
	tokens  *tokenCache
	issuers []*issuer
	own     *keyRing
	ids     errand.IDGenerator
	watch   *watches

	run lifecycle.Loop
}

// New returns an authenticator over store; Start loads errand's signing keys.
func New(store storage.Store, cfg *Config) (*Authenticator, error) {
	c := cfg.withDefaults()
	a := &Authenticator{store: store, cfg: c, tokens: newTokenCache(10000), watch: newWatches()}
	a.keys = newKeyCache(store, c.KeyCacheTTL, c.Now)
	for _, k := range c.Keys {
		a.keys.config[strings.ToLower(k.SHA256)] = &errand.APIKey{ID: "config:" + k.Name, Name: k.Name,
			Tenant: k.Tenant, Roles: k.Roles, Hash: strings.ToLower(k.SHA256)}
	}
	a.own = newKeyRing(store, c.Now)
	for i := range c.Issuers {
		if strings.Contains(c.Issuers[i].Issuer, "#") {
			return nil, fmt.Errorf("jwt issuer %q: an issuer has no fragment (#)", c.Issuers[i].Issuer)
		}
		is, err := newIssuer(&c.Issuers[i], &c)
		if err != nil {
			return nil, fmt.Errorf("jwt issuer %q: %w", c.Issuers[i].Issuer, err)
		}
		a.issuers = append(a.issuers, is)
	}
	return a, nil
}

// Start loads (or makes) errand's signing keys, starts fetching JWKS documents
// and the background work: key rotation, last-used times, expired tickets.
func (a *Authenticator) Start(ctx context.Context) error {
	if err := a.own.load(ctx, a.cfg.KeyRotation, a.cfg.TokenTTL+a.cfg.Leeway); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	a.run.Go(ctx, a.loop)
	for _, is := range a.issuers {
		if err := is.start(a.run.Context()); err != nil {
			_ = a.run.Halt(ctx)
			return err
		}
	}
	return nil
}

// Stop ends the background work, writing the last-used times it holds.
func (a *Authenticator) Stop(ctx context.Context) error {
	if err := a.run.Halt(ctx); err != nil {
		return err
	}
	return a.keys.flush(ctx)
}

func (a *Authenticator) loop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	watch := time.NewTicker(a.cfg.KeyCacheTTL)
	defer watch.Stop()
	for n := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-a.watch.changed:
			// An API key changed, here or on another node: end what revoked keys hold open.
			a.checkWatched(ctx)
		case <-watch.C:
			// A key revoked on the store directly (the command line) is seen within KeyCacheTTL.
			a.checkWatched(ctx)
		case <-t.C:
			if err := a.keys.flush(ctx); err != nil && ctx.Err() == nil {
				a.cfg.Log.Warn("api key last-used times", "err", err)
			}
			if n%12 == 0 { // every minute
				a.maintain(ctx)
			}
			n++
		}
	}
}

// maintain rotates the signing key when it is due (and reads keys other nodes
// made) and deletes expired tickets.
func (a *Authenticator) maintain(ctx context.Context) {
	if err := a.own.load(ctx, a.cfg.KeyRotation, a.cfg.TokenTTL+a.cfg.Leeway); err != nil && ctx.Err() == nil {
		a.cfg.Log.Warn("signing key rotation", "err", err)
	}
	err := a.store.WithTx(ctx, func(tx storage.Tx) error {
		_, err := tx.ExpireTickets(a.cfg.Now(), 1000)
		return err
	})
	if err != nil && ctx.Err() == nil {
		a.cfg.Log.Warn("expire tickets", "err", err)
	}
}

// principal makes the principal with identity id for a subject, tenant and
// roles, with the permissions the roles grant.
func (a *Authenticator) principal(id, subject, tenant string, roles []string, via string, cred errand.Credential) errand.Principal {
	return errand.Principal{ID: id, Subject: subject, Tenant: tenant, Roles: roles, Permissions: a.permissions(roles),
		Via: via, Credential: cred}
}

// permissions are what roles grant. admin stands for every permission of the
// tenant, so beside it only operator-level ones (…@*) are kept.
func (a *Authenticator) permissions(roles []string) []string {
	var out []string
	admin := slices.Contains(roles, errand.PermAdmin)
	if admin {
		out = []string{errand.PermAdmin}
	}
	for _, r := range roles {
		for _, p := range a.cfg.Roles[r] {
			if (!admin || strings.HasSuffix(p, errand.EveryTenant)) && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// HasRole reports whether a role is declared (admin always is).
func (a *Authenticator) HasRole(role string) bool {
	_, ok := a.cfg.Roles[role]
	return ok || role == errand.PermAdmin
}

// Authenticate verifies a bearer token: an API key (ek_…) or a JWT.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (errand.Principal, error) {
	switch {
	case token == "":
		return errand.Principal{}, unauthorized("no bearer token: send Authorization: Bearer <token>")
	case strings.HasPrefix(token, keyPrefix):
		k, err := a.keys.lookup(ctx, token)
		if err != nil {
			return errand.Principal{}, err
		}
		subject := k.ID
		if strings.HasPrefix(k.ID, "config:") {
			subject = k.Name
		}
		return a.principal(k.ID, subject, k.Tenant, k.Roles, "api_key",
			errand.Credential{KeyID: k.ID, ExpiresAt: k.ExpiresAt}), nil
	case strings.HasPrefix(token, ticketPrefix):
		return errand.Principal{}, unauthorized("tickets are accepted only in the query string of event streams")
	case strings.Count(token, ".") == 2:
		return a.verifyJWT(token)
	}
	return errand.Principal{}, unauthorized("the bearer token is neither an API key nor a JWT")
}

func unauthorized(msg string) *errand.Error { return errand.Errorf(errand.EUNAUTHORIZED, "%s", msg) }

// errNotActive is what an unknown, revoked or expired API key answers.
var errNotActive = unauthorized("the API key is not valid (unknown, revoked or expired)")

// isNotFound reports whether err is the store's not-found.
func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// Committed hears every commit (register with the store's Listen): a key
// revoked on any node is forgotten here at once, not after KeyCacheTTL.
func (a *Authenticator) Committed(c *storage.Commit) {
	if slices.Contains(c.Changed, storage.ChangedAPIKeys) {
		a.keys.mu.Lock()
		clear(a.keys.entries)
		a.keys.mu.Unlock()
		a.watch.notify()
	}
}
