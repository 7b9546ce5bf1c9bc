package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// keyPrefix starts every API key token.
const keyPrefix = "ek_"

// HashToken is the hex SHA-256 under which a token is kept. API keys and tickets
// carry 192 random bits, so a fast hash is safe: there is nothing to guess.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// newToken makes a token with prefix and 192 random bits.
func newToken(prefix string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// keyCache looks up API keys by token hash, trusting what it read for ttl, and
// gathers last-used times to write in batches.
type keyCache struct {
	store  storage.Store
	ttl    time.Duration
	now    func() time.Time
	config map[string]*errand.APIKey // by hash; never expire, never stored

	mu      sync.Mutex
	entries map[string]keyEntry // by hash
	used    map[string]time.Time
}

type keyEntry struct {
	key  *errand.APIKey
	read time.Time
}

func newKeyCache(store storage.Store, ttl time.Duration, now func() time.Time) *keyCache {
	return &keyCache{store: store, ttl: ttl, now: now, config: map[string]*errand.APIKey{},
		entries: map[string]keyEntry{}, used: map[string]time.Time{}}
}

// lookup returns the active key a token names.
func (c *keyCache) lookup(ctx context.Context, token string) (*errand.APIKey, error) {
	hash := HashToken(token)
	if k, ok := c.config[hash]; ok {
		return k, nil
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[hash]
	c.mu.Unlock()
	if !ok || now.Sub(e.read) > c.ttl {
		k, err := c.store.APIKeyByHash(ctx, hash)
		if isNotFound(err) {
			return nil, errNotActive
		}
		if err != nil {
			return nil, fmt.Errorf("read api key: %w", err)
		}
		e = keyEntry{key: k, read: now}
		c.mu.Lock()
		if len(c.entries) >= 10000 {
			clear(c.entries)
		}
		c.entries[hash] = e
		c.mu.Unlock()
	}
	if !e.key.Active(now) {
		return nil, errNotActive
	}
	c.touch(e.key, now)
	return e.key, nil
}

// touch notes a use; a key's last-used time is written at most once a minute.
func (c *keyCache) touch(k *errand.APIKey, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k.LastUsed != nil && now.Sub(*k.LastUsed) < time.Minute {
		return
	}
	t := now
	k.LastUsed = &t
	c.used[k.ID] = now
}

// forget drops a key from the cache (after it was revoked here).
func (c *keyCache) forget(hash string) {
	c.mu.Lock()
	delete(c.entries, hash)
	c.mu.Unlock()
}

// flush writes the last-used times gathered since the last flush.
func (c *keyCache) flush(ctx context.Context) error {
	c.mu.Lock()
	used := maps.Clone(c.used)
	clear(c.used)
	c.mu.Unlock()
	if len(used) == 0 {
		return nil
	}
	return c.store.WithTx(ctx, func(tx storage.Tx) error { return tx.TouchAPIKeys(used) })
}

// MaxKeyLifetime is the longest expiry a key may be given: 10 years.
const MaxKeyLifetime = 10 * 365 * 24 * time.Hour

// KeyInput is what a new API key is made of.
type KeyInput struct {
	Name   string
	Tenant string // "" for the creator's
	Roles  []string
	// ExpiresIn, when positive, ends the key that long after it is made.
	ExpiresIn time.Duration
}

// CreateKey makes an API key and returns it with its token, which is shown
// only now. by is who asks: keys are made in its tenant unless by is "" (the
// command line, on the store directly).
func (a *Authenticator) CreateKey(ctx context.Context, by *errand.Principal, in KeyInput) (*errand.APIKey, string, error) {
	if err := a.checkKey(by, &in); err != nil {
		return nil, "", err
	}
	now := a.cfg.Now().UTC()
	token := newToken(keyPrefix)
	k := &errand.APIKey{ID: a.ids.New("key", now), Name: in.Name, Tenant: in.Tenant, Roles: in.Roles,
		Hash: HashToken(token), Prefix: token[:10], CreatedAt: now}
	if by != nil {
		k.CreatedBy = by.ID
	}
	if in.ExpiresIn > 0 {
		exp := now.Add(in.ExpiresIn)
		k.ExpiresAt = &exp
	}
	if err := a.store.WithTx(ctx, func(tx storage.Tx) error { return tx.InsertAPIKey(k) }); err != nil {
		return nil, "", fmt.Errorf("create api key: %w", err)
	}
	return k, token, nil
}

func (a *Authenticator) checkKey(by *errand.Principal, in *KeyInput) error {
	var fields []errand.FieldError
	if by != nil {
		if !by.Can(errand.PermKeysManage, "") {
			return errand.Deny(errand.PermKeysManage, "api keys")
		}
		if in.Tenant != "" && in.Tenant != by.Tenant {
			fields = append(fields, errand.FieldError{Pointer: "/tenant", Message: "keys can only be made for your own tenant"})
		}
		in.Tenant = by.Tenant
	}
	if in.Name == "" || len(in.Name) > 100 {
		fields = append(fields, errand.FieldError{Pointer: "/name", Message: "required, at most 100 characters"})
	}
	if in.Tenant == "" || len(in.Tenant) > 100 {
		fields = append(fields, errand.FieldError{Pointer: "/tenant", Message: "required, at most 100 characters"})
	}
	if len(in.Roles) == 0 {
		fields = append(fields, errand.FieldError{Pointer: "/roles", Message: "at least one role"})
	}
	for i, r := range in.Roles {
		if !a.HasRole(r) {
			fields = append(fields, errand.FieldError{Pointer: fmt.Sprintf("/roles/%d", i), Message: fmt.Sprintf("role %q is not declared in auth.roles", r)})
		}
	}
	if in.ExpiresIn < 0 || in.ExpiresIn > MaxKeyLifetime {
		fields = append(fields, errand.FieldError{Pointer: "/expires_in_seconds",
			Message: fmt.Sprintf("must be between 0 (no expiry) and %d (10 years)", int64(MaxKeyLifetime/time.Second))})
	}
	if len(fields) > 0 {
		return &errand.Error{Code: errand.EVALIDATION, Message: "the key is not valid", Fields: fields}
	}
	if by != nil {
		return a.MayGrant(by, in.Roles)
	}
	return nil
}

// MayGrant checks the rule against privilege escalation for every route that
// grants roles (a new API key's, an OAuth token's scope): by may grant a role
// only if it holds every permission the role grants (errand.Covers), as
// Kubernetes' RBAC has it. Roles must be declared.
func (a *Authenticator) MayGrant(by *errand.Principal, roles []string) error {
	for _, r := range roles {
		for _, perm := range a.permissions([]string{r}) {
			if !errand.Covers(by.Permissions, perm) {
				return &errand.Error{Code: errand.EFORBIDDEN, Action: errand.PermKeysManage, Resource: "role " + r,
					Message: fmt.Sprintf("not allowed: role %q grants %q, which you do not hold; you may grant only what you hold", r, perm)}
			}
		}
	}
	return nil
}

// ListKeys returns the keys of by's tenant (every tenant's when by is nil).
func (a *Authenticator) ListKeys(ctx context.Context, by *errand.Principal) ([]*errand.APIKey, error) {
	tenant := ""
	if by != nil {
		if !by.Can(errand.PermKeysManage, "") {
			return nil, errand.Deny(errand.PermKeysManage, "api keys")
		}
		tenant = by.Tenant
	}
	return a.store.ListAPIKeys(ctx, tenant)
}

// RevokeKey ends a key at once on this node (within KeyCacheTTL on others).
func (a *Authenticator) RevokeKey(ctx context.Context, by *errand.Principal, id string) (*errand.APIKey, error) {
	if by != nil && !by.Can(errand.PermKeysManage, "") {
		return nil, errand.Deny(errand.PermKeysManage, id)
	}
	var out *errand.APIKey
	err := a.store.WithTx(ctx, func(tx storage.Tx) error {
		k, err := tx.GetAPIKey(id)
		if isNotFound(err) || (err == nil && by != nil && k.Tenant != by.Tenant) {
			return errand.Errorf(errand.ENOTFOUND, "api key %q does not exist", errand.Truncate(id, 64))
		}
		if err != nil {
			return err
		}
		if k.RevokedAt == nil {
			now := a.cfg.Now().UTC()
			k.RevokedAt = &now
			if err := tx.UpdateAPIKey(k); err != nil {
				return err
			}
		}
		out = k
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.keys.forget(out.Hash)
	return out, nil
}
