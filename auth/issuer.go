package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/golang-jwt/jwt/v5"
)

// settingSigningKeys is the store setting that holds errand's signing keys, so
// every node signs and verifies with the same ones.
const settingSigningKeys = "oauth_signing_keys"

// signingKey is one of errand's ES256 keys.
type signingKey struct {
	Kid     string     `json:"kid"`
	Created time.Time  `json:"created"`
	Retired *time.Time `json:"retired,omitempty"` // when a newer key took over signing
	PKCS8   []byte     `json:"pkcs8"`
	priv    *ecdsa.PrivateKey
}

// keyRing holds errand's signing keys, newest first.
type keyRing struct {
	store storage.Store
	now   func() time.Time

	mu       sync.RWMutex
	keys     []*signingKey
	reloaded time.Time
}

func newKeyRing(store storage.Store, now func() time.Time) *keyRing {
	return &keyRing{store: store, now: now}
}

// load reads the keys, making a new one when there is none or the newest is
// older than rotation, and dropping retired keys whose last token (ttl) expired.
func (r *keyRing) load(ctx context.Context, rotation, ttl time.Duration) error {
	return r.update(ctx, func(keys []*signingKey, now time.Time) []*signingKey {
		if len(keys) == 0 || now.Sub(keys[0].Created) >= rotation {
			return rotateKeys(keys, now, ttl)
		}
		return keys
	})
}

// rotate makes a new signing key now; the old one still verifies its tokens.
func (r *keyRing) rotate(ctx context.Context, ttl time.Duration) error {
	return r.update(ctx, func(keys []*signingKey, now time.Time) []*signingKey { return rotateKeys(keys, now, ttl) })
}

func rotateKeys(keys []*signingKey, now time.Time, ttl time.Duration) []*signingKey {
	if len(keys) > 0 && keys[0].Retired == nil {
		keys[0].Retired = &now
	}
	keys = slices.DeleteFunc(keys, func(k *signingKey) bool { return k.Retired != nil && now.Sub(*k.Retired) > ttl })
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	var kid [12]byte
	_, _ = rand.Read(kid[:])
	k := &signingKey{Kid: base64.RawURLEncoding.EncodeToString(kid[:]), Created: now, PKCS8: der, priv: priv}
	return append([]*signingKey{k}, keys...)
}

// update applies change to the stored keys in one transaction (so nodes agree)
// and keeps the result.
func (r *keyRing) update(ctx context.Context, change func([]*signingKey, time.Time) []*signingKey) error {
	var keys []*signingKey
	now := r.now().UTC()
	err := r.store.WithTx(ctx, func(tx storage.Tx) error {
		keys = nil
		raw, err := tx.GetSetting(settingSigningKeys)
		if err != nil && !isNotFound(err) {
			return err
		}
		if raw != "" {
			if err := json.Unmarshal([]byte(raw), &keys); err != nil {
				return fmt.Errorf("stored signing keys: %w", err)
			}
		}
		before := len(keys) > 0 && keys[0].Retired == nil
		was := string(must(json.Marshal(keys)))
		keys = change(keys, now)
		if after := string(must(json.Marshal(keys))); after != was || !before {
			return tx.PutSetting(settingSigningKeys, after)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.priv != nil {
			continue
		}
		p, err := x509.ParsePKCS8PrivateKey(k.PKCS8)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", k.Kid, err)
		}
		k.priv = p.(*ecdsa.PrivateKey)
	}
	r.mu.Lock()
	r.keys, r.reloaded = keys, now
	r.mu.Unlock()
	return nil
}

func must(b []byte, _ error) []byte { return b }

// find returns the key with kid, reading the store again (at most once a
// second) when it is unknown: another node may have rotated.
func (r *keyRing) find(kid string) *signingKey {
	r.mu.RLock()
	keys, reloaded := r.keys, r.reloaded
	r.mu.RUnlock()
	for _, k := range keys {
		if k.Kid == kid {
			return k
		}
	}
	if r.now().Sub(reloaded) < time.Second {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.update(ctx, func(k []*signingKey, _ time.Time) []*signingKey { return k }); err != nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.keys {
		if k.Kid == kid {
			return k
		}
	}
	return nil
}

func (r *keyRing) keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if k := r.find(kid); k != nil {
		return &k.priv.PublicKey, nil
	}
	return nil, fmt.Errorf("unknown key id %q", errand.Truncate(kid, 40))
}

func (r *keyRing) current() *signingKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys[0]
}

// JWKS is the JSON Web Key Set of errand's public signing keys, served at
// /.well-known/jwks.json.
func (a *Authenticator) JWKS() []byte {
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Y   string `json:"y"`
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Use string `json:"use"`
	}
	a.own.mu.RLock()
	keys := a.own.keys
	a.own.mu.RUnlock()
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, k := range keys {
		pub := &k.priv.PublicKey
		var x, y [32]byte
		pub.X.FillBytes(x[:])
		pub.Y.FillBytes(y[:])
		set.Keys = append(set.Keys, jwk{Kty: "EC", Crv: "P-256", X: base64.RawURLEncoding.EncodeToString(x[:]),
			Y: base64.RawURLEncoding.EncodeToString(y[:]), Kid: k.Kid, Alg: "ES256", Use: "sig"})
	}
	return must(json.Marshal(set))
}

// RotateKey makes a new signing key now (the admin API); tokens signed with
// the old one stay valid until they expire.
func (a *Authenticator) RotateKey(ctx context.Context, by *errand.Principal) (string, error) {
	if !by.CanEveryTenant(errand.PermOAuthRotate, "") {
		return "", errand.Deny(errand.PermOAuthRotate+errand.EveryTenant, "signing keys")
	}
	if err := a.own.rotate(ctx, a.cfg.TokenTTL+a.cfg.Leeway); err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	return a.own.current().Kid, nil
}

// OAuthError is a token endpoint failure as RFC 6749 §5.2 words it.
type OAuthError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

// AccessToken is a token endpoint answer.
type AccessToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// Exchange is the client-credentials grant: an API key's id and token are the
// client id and secret; scope, if given, is the token's roles instead of the
// key's, each of which must grant nothing the key does not hold (MayGrant).
func (a *Authenticator) Exchange(ctx context.Context, clientID, secret, scope string) (*AccessToken, error) {
	bad := &OAuthError{Status: 401, Code: "invalid_client", Description: "client authentication failed"}
	if !strings.HasPrefix(secret, keyPrefix) {
		return nil, bad
	}
	k, err := a.keys.lookup(ctx, secret)
	if err == errNotActive {
		return nil, bad
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(clientID), []byte(k.ID)) != 1 {
		return nil, bad
	}
	roles := k.Roles
	if scope != "" {
		roles = strings.Fields(scope)
		held := a.permissions(k.Roles)
		for _, r := range roles {
			if !a.HasRole(r) || a.MayGrant(&errand.Principal{Permissions: held}, []string{r}) != nil {
				return nil, &OAuthError{Status: 400, Code: "invalid_scope",
					Description: fmt.Sprintf("the role %q is not declared or grants more than the client holds", errand.Truncate(r, 60))}
			}
		}
	}
	now := a.cfg.Now()
	exp := now.Add(a.cfg.TokenTTL)
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": a.cfg.Issuer, "aud": a.cfg.Audience,
		"sub": k.ID, "tenant": k.Tenant, "roles": roles, "iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti[:])})
	key := a.own.current()
	t.Header["kid"] = key.Kid
	signed, err := t.SignedString(key.priv)
	if err != nil {
		return nil, fmt.Errorf("sign token: %w", err)
	}
	return &AccessToken{AccessToken: signed, TokenType: "Bearer", ExpiresIn: int(a.cfg.TokenTTL.Seconds()),
		Scope: strings.Join(roles, " ")}, nil
}
