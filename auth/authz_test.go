package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/auth"
	"github.com/golang-jwt/jwt/v5"
)

const testSecret = "a-shared-secret-of-at-least-32-bytes"

var roles = map[string][]string{
	"keymaster": {"keys:manage"},
	"reporter":  {"jobs:submit:generate-*", "jobs:read:own"},
	"monthly":   {"jobs:submit:generate-monthly"},
	"lead":      {"keys:manage", "jobs:submit:generate-*", "jobs:read:any"},
	"fleet":     {"workers:lease:*@*"},
}

// TestMayGrant: a key may be given only roles whose permissions its maker holds.
func TestMayGrant(t *testing.T) {
	a := start(t, openStore(t), &auth.Config{Roles: roles})
	ctx := context.Background()
	by := func(rs ...string) *errand.Principal {
		_, tok, err := a.CreateKey(ctx, nil, auth.KeyInput{Name: "maker", Tenant: "acme", Roles: rs})
		if err != nil {
			t.Fatal(err)
		}
		p, err := a.Authenticate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		return &p
	}
	cases := []struct {
		by    *errand.Principal
		roles []string
		want  string // error code, "" for allowed
	}{
		{by("keymaster"), []string{"admin"}, errand.EFORBIDDEN},
		{by("keymaster"), []string{"keymaster"}, ""},
		{by("keymaster"), []string{"reporter"}, errand.EFORBIDDEN},
		{by("lead"), []string{"reporter", "monthly"}, ""},
		{by("lead"), []string{"lead"}, ""},
		{by("lead"), []string{"fleet"}, errand.EFORBIDDEN},
		{by("admin"), []string{"lead", "admin"}, ""},
		{by("admin"), []string{"fleet"}, errand.EFORBIDDEN},
		{by("admin", "fleet"), []string{"fleet"}, ""},
		{by("reporter"), []string{"reporter"}, errand.EFORBIDDEN}, // no keys:manage
		{by("lead"), []string{"ghost"}, errand.EVALIDATION},
	}
	for _, c := range cases {
		_, _, err := a.CreateKey(ctx, c.by, auth.KeyInput{Name: "k", Roles: c.roles})
		if got := errand.ErrorCode(err); (c.want == "" && err != nil) || (c.want != "" && got != c.want) {
			t.Errorf("%v makes a key with %v: %v, want %q", c.by.Roles, c.roles, err, c.want)
		}
	}
	var e *errand.Error
	_, _, err := a.CreateKey(ctx, by("keymaster"), auth.KeyInput{Name: "k", Roles: []string{"admin"}})
	if !errors.As(err, &e) || e.Action != errand.PermKeysManage || e.Resource != "role admin" {
		t.Errorf("an escalation is %+v, want a denial of keys:manage on role admin (for the audit log)", err)
	}
	// An OAuth scope: roles the key's permissions cover.
	k, tok, _ := a.CreateKey(ctx, nil, auth.KeyInput{Name: "svc", Tenant: "acme", Roles: []string{"lead"}})
	for scope, ok := range map[string]bool{"reporter": true, "reporter monthly": true, "lead": true, "admin": false,
		"keymaster fleet": false, "ghost": false} {
		_, err := a.Exchange(ctx, k.ID, tok, scope)
		var oe *auth.OAuthError
		if ok != (err == nil) || (!ok && (!errors.As(err, &oe) || oe.Code != "invalid_scope")) {
			t.Errorf("scope %q: %v, want allowed %v", scope, err, ok)
		}
	}
}

func hsToken(t *testing.T, c jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tokenClaims(extra ...any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": "https://idp", "aud": "errand", "sub": "alice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == nil {
			delete(c, extra[i].(string))
		} else {
			c[extra[i].(string)] = extra[i+1]
		}
	}
	return c
}

// TestJWTChecks: a fixed tenant wins over the tenant claim, crit is refused,
// a missing aud is named, and a token's identity is its issuer's and subject.
func TestJWTChecks(t *testing.T) {
	a := start(t, openStore(t), &auth.Config{Issuers: []auth.IssuerConfig{
		{Issuer: "https://idp", Audience: []string{"errand"}, Secret: testSecret, Tenant: "acme"}}})
	ctx := context.Background()
	cases := []struct {
		name   string
		token  string
		tenant string // "" when refused
		reason string
	}{
		{"no tenant claim", hsToken(t, tokenClaims(), nil), "acme", ""},
		{"the fixed tenant", hsToken(t, tokenClaims("tenant", "acme"), nil), "acme", ""},
		{"another tenant", hsToken(t, tokenClaims("tenant", "globex"), nil), "", "another tenant"},
		{"crit", hsToken(t, tokenClaims(), map[string]any{"crit": []string{"exp"}, "exp": 1}), "", "crit"},
		{"empty crit", hsToken(t, tokenClaims(), map[string]any{"crit": []string{}}), "", "crit"},
		{"no aud", hsToken(t, tokenClaims("aud", nil), nil), "", "no aud claim"},
		{"no exp", hsToken(t, tokenClaims("exp", nil), nil), "", "no exp claim"},
		{"no exp, no aud", hsToken(t, tokenClaims("exp", nil, "aud", nil), nil), "", "no exp and aud claim"},
	}
	for _, c := range cases {
		p, err := a.Authenticate(ctx, c.token)
		switch {
		case c.tenant != "" && (err != nil || p.Tenant != c.tenant):
			t.Errorf("%s: %+v, %v; want tenant %s", c.name, p, err, c.tenant)
		case c.tenant == "" && (errand.ErrorCode(err) != errand.EUNAUTHORIZED || !strings.Contains(errand.ErrorMessage(err), c.reason)):
			t.Errorf("%s: %+v, %v; want unauthorized saying %q", c.name, p, err, c.reason)
		}
	}
	p, _ := a.Authenticate(ctx, hsToken(t, tokenClaims("sub", "key_01JD"), nil))
	if p.ID != "jwt:https://idp#key_01JD" || p.Subject != "key_01JD" || p.Credential.KeyID != "" || p.Credential.ExpiresAt == nil {
		t.Errorf("a token with an API key's id as sub = %+v, want identity jwt:https://idp#key_01JD, no key", p)
	}
	if _, err := auth.New(openStore(t), &auth.Config{Issuers: []auth.IssuerConfig{{Issuer: "https://idp#x", Secret: testSecret}}}); err == nil {
		t.Errorf("an issuer with a fragment was accepted")
	}
}

// TestBind: what Bind gives ends when the key is revoked (heard through the
// store, or read again within KeyCacheTTL when revoked elsewhere) or the token
// expires, with the reason as its cause; a configured key's never ends.
func TestBind(t *testing.T) {
	s := openStore(t)
	a := start(t, s, &auth.Config{KeyCacheTTL: 300 * time.Millisecond, Leeway: time.Second,
		Keys:    []auth.ConfigKey{{Name: "ci", SHA256: auth.HashToken("ek_config"), Tenant: "acme", Roles: []string{"admin"}}},
		Issuers: []auth.IssuerConfig{{Issuer: "https://idp", Secret: testSecret, Tenant: "acme"}}})
	s.Listen(a)
	other := start(t, s, nil) // another errand on the store, not listening: the command line
	ctx := context.Background()
	bound := func(tok string) context.Context {
		p, err := a.Authenticate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := a.Bind(ctx, &p)
		t.Cleanup(cancel)
		return c
	}
	ended := func(name string, c context.Context, why string, within time.Duration) {
		t.Helper()
		select {
		case <-c.Done():
			if cause := context.Cause(c); errand.ErrorCode(cause) != errand.EUNAUTHORIZED || !strings.Contains(cause.Error(), why) {
				t.Errorf("%s: ended with %v, want unauthorized saying %q", name, cause, why)
			}
		case <-time.After(within):
			t.Errorf("%s: still bound after %v", name, within)
		}
	}
	k1, tok1, _ := a.CreateKey(ctx, nil, auth.KeyInput{Name: "a", Tenant: "acme", Roles: []string{"admin"}})
	k2, tok2, _ := a.CreateKey(ctx, nil, auth.KeyInput{Name: "b", Tenant: "acme", Roles: []string{"admin"}})
	c1, c1b, c2, cfg := bound(tok1), bound(tok1), bound(tok2), bound("ek_config")
	oauth, err := a.Exchange(ctx, k1.ID, tok1, "")
	if err != nil {
		t.Fatal(err)
	}
	cOAuth := bound(oauth.AccessToken)
	if _, err := a.RevokeKey(ctx, nil, k1.ID); err != nil {
		t.Fatal(err)
	}
	ended("a revoked key", c1, "revoked", 2*time.Second)
	ended("a revoked key, bound twice", c1b, "revoked", time.Second)
	ended("an OAuth token of a revoked key", cOAuth, "revoked", time.Second)
	if c2.Err() != nil {
		t.Errorf("another key's binding ended with the revocation: %v", context.Cause(c2))
	}
	if _, err := other.RevokeKey(ctx, nil, k2.ID); err != nil {
		t.Fatal(err)
	}
	ended("a key revoked by another errand", c2, "revoked", 3*time.Second)
	exp := time.Now().Add(time.Second)
	c := tokenClaims("aud", nil)
	c["exp"] = exp.Unix()
	ended("a token", bound(hsToken(t, c, nil)), "expired", 4*time.Second)
	if cfg.Err() != nil {
		t.Errorf("a configured key's binding ended: %v", context.Cause(cfg))
	}
}
