package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/auth"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/storage/sqlite"
	"github.com/golang-jwt/jwt/v5"
)

func openStore(t *testing.T) *sqlite.Store { return teststore.Open(t) }

func start(t *testing.T, s *sqlite.Store, cfg *auth.Config) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(context.Background()) })
	return a
}

func TestGrants(t *testing.T) {
	cases := []struct {
		perm, action, object string
		want                 bool
	}{
		{"admin", "jobs:submit", "x", true},
		{"jobs:submit:generate-*", "jobs:submit", "generate-report", true},
		{"jobs:submit:generate-*", "jobs:submit", "echo", false},
		{"jobs:submit", "jobs:submit", "anything", true},
		{"jobs:*", "jobs:cancel", "own", true},
		{"jobs:read:own", "jobs:read", "any", false},
		{"jobs:read:*", "jobs:read", "any", true},
		{"channels:subscribe:orders.*", "channels:subscribe", "orders.eu.paris", true},
		{"channels:subscribe:orders.*", "channels:publish", "orders.eu", false},
		{"channels:subscribe:orders.*", "channels:subscribe", "ordersx", false},
		{"*:*", "webhooks:manage", "", true},
		{"webhooks:manage", "keys:manage", "", false},
		{"workers:lease:a*b*c", "workers:lease", "aXbYc", true},
		{"workers:lease:a*b*c", "workers:lease", "aXbYcd", false},
	}
	for _, c := range cases {
		if got := errand.Grants(c.perm, c.action, c.object); got != c.want {
			t.Errorf("Grants(%q, %q, %q) = %v, want %v", c.perm, c.action, c.object, got, c.want)
		}
	}
}

// FuzzAuthenticate: whatever the token, Authenticate answers unauthorized (it
// never panics and never lets a made-up token in).
func FuzzAuthenticate(f *testing.F) {
	for _, seed := range []string{"", "ek_", "ek_x", "tk_abc", "a.b.c", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJlcnJhbmQifQ.",
		"eyJhbGciOiJIUzI1NiJ9.e30.sig", strings.Repeat(".", 2), "Bearer", "\x00\xff.\x00.\x00"} {
		f.Add(seed)
	}
	s := teststore.Open(f)
	a, err := auth.New(s, &auth.Config{Issuers: []auth.IssuerConfig{{Issuer: "https://hs", Secret: strings.Repeat("k", 32)}}})
	if err != nil {
		f.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	defer a.Stop(context.Background())
	f.Fuzz(func(t *testing.T, token string) {
		p, err := a.Authenticate(context.Background(), token)
		if errand.ErrorCode(err) != errand.EUNAUTHORIZED {
			t.Fatalf("Authenticate(%q) = %+v, %v; want unauthorized", token, p, err)
		}
	})
}

// TestSigningKeysAcrossNodes: a token one node signs verifies on another, also
// right after the first rotated its key.
func TestSigningKeysAcrossNodes(t *testing.T) {
	s := openStore(t)
	a := start(t, s, nil)
	b := start(t, s, nil)
	admin := errand.Principal{Subject: "root", Tenant: "acme", Permissions: []string{errand.PermAdmin}}
	_, token, err := a.CreateKey(context.Background(), &admin, auth.KeyInput{Name: "svc", Roles: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := a.ListKeys(context.Background(), &admin)
	exchange := func(n *auth.Authenticator) string {
		tok, err := n.Exchange(context.Background(), keys[0].ID, token, "")
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	first := exchange(a)
	time.Sleep(1100 * time.Millisecond) // b re-reads the keys at most once a second
	if _, err := a.RotateKey(context.Background(), &admin); errand.ErrorCode(err) != errand.EFORBIDDEN {
		t.Fatalf("a tenant's admin rotates the cluster's signing key: %v, want forbidden", err)
	}
	operator := errand.Principal{ID: "ops", Subject: "ops", Tenant: "acme", Permissions: []string{"oauth:rotate-key@*"}}
	if _, err := a.RotateKey(context.Background(), &operator); err != nil {
		t.Fatal(err)
	}
	second := exchange(a)
	for i, tok := range []string{first, second} {
		p, err := b.Authenticate(context.Background(), tok)
		if err != nil || p.Tenant != "acme" || p.Via != "oauth" {
			t.Errorf("token %d on the other node: %+v, %v", i, p, err)
		}
	}
	kid := func(tok string) string {
		parsed, _, _ := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
		return parsed.Header["kid"].(string)
	}
	if kid(first) == kid(second) {
		t.Errorf("rotation kept the key id %s", kid(first))
	}
}

// TestRevokedKeyCache: a revoked key stops at once on the node that revoked it.
func TestRevokedKeyCache(t *testing.T) {
	s := openStore(t)
	a := start(t, s, nil)
	admin := errand.Principal{Subject: "root", Tenant: "acme", Permissions: []string{errand.PermAdmin}}
	k, token, err := a.CreateKey(context.Background(), &admin, auth.KeyInput{Name: "svc", Roles: []string{"admin"}, ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(context.Background(), token); err != nil {
		t.Fatalf("fresh key: %v", err)
	}
	other := errand.Principal{Subject: "x", Tenant: "globex", Permissions: []string{errand.PermAdmin}}
	if _, err := a.RevokeKey(context.Background(), &other, k.ID); errand.ErrorCode(err) != errand.ENOTFOUND {
		t.Errorf("revoke from another tenant: %v, want not_found", err)
	}
	if _, err := a.RevokeKey(context.Background(), &admin, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(context.Background(), token); errand.ErrorCode(err) != errand.EUNAUTHORIZED {
		t.Errorf("revoked key: %v, want unauthorized", err)
	}
}
