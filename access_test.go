package errand_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/errandhq/errand"
)

// FuzzGrants: any permission and action parse without panicking; admin grants
// everything; a permission without stars grants exactly its own action and object.
func FuzzGrants(f *testing.F) {
	for _, s := range [][3]string{{"jobs:submit:generate-*", "jobs:submit", "generate-report"},
		{"channels:subscribe:orders.*", "channels:subscribe", "orders.eu"}, {"*:*", "webhooks:manage", ""},
		{"jobs:read:own", "jobs:read", "any"}, {"a*b*c*", "x", "aXbYcZ"}, {":::", ":", ""}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, perm, action, object string) {
		got := errand.Grants(perm, action, object)
		if !errand.Grants(errand.PermAdmin, action, object) {
			t.Fatal("admin does not grant everything")
		}
		if strings.Contains(perm, "*") || strings.Count(perm, ":") != 2 || strings.Count(action, ":") != 1 {
			return
		}
		want := perm == action+":"+object
		if got != want {
			t.Fatalf("Grants(%q, %q, %q) = %v, want %v", perm, action, object, got, want)
		}
	})
}

// FuzzMatchGlob: MatchGlob agrees with the equivalent regular expression.
func FuzzMatchGlob(f *testing.F) {
	f.Add("orders.*", "orders.eu")
	f.Add("a*b*c", "aXbYc")
	f.Add("***", "")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(name) {
			return // the reference regexp takes only UTF-8 (names are UTF-8)
		}
		got := errand.MatchGlob(pattern, name)
		ref := regexp.MustCompile(`(?s)^` + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, `.*`) + `$`)
		if want := ref.MatchString(name); got != want {
			t.Fatalf("MatchGlob(%q, %q) = %v, the regexp says %v", pattern, name, got, want)
		}
		if !errand.MatchGlob("*", name) {
			t.Fatalf(`MatchGlob("*", %q) = false`, name)
		}
	})
}

func TestCovers(t *testing.T) {
	cases := []struct {
		held  []string
		grant string
		want  bool
	}{
		{[]string{"admin"}, "admin", true},
		{[]string{"admin"}, "jobs:submit:x", true},
		{[]string{"admin"}, "workers:lease:*@*", false}, // admin is one tenant's
		{[]string{"keys:manage"}, "admin", false},
		{[]string{"keys:manage"}, "keys:manage", true},
		{[]string{"keys:manage"}, "jobs:read:own", false},
		{[]string{"*:*"}, "webhooks:manage", true},
		{[]string{"*:*"}, "admin", false},
		{[]string{"jobs:*"}, "jobs:cancel:own", true},
		{[]string{"jobs:*"}, "channels:publish:x", false},
		{[]string{"jobs:read:any"}, "jobs:read:own", true},
		{[]string{"jobs:read:own"}, "jobs:read:any", false},
		{[]string{"jobs:read:own"}, "jobs:read", false},
		{[]string{"jobs:submit:generate-*"}, "jobs:submit:generate-monthly*", true},
		{[]string{"jobs:submit:generate-*"}, "jobs:submit:generate-report", true},
		{[]string{"jobs:submit:generate-*"}, "jobs:submit:*", false},
		{[]string{"jobs:submit:generate-*"}, "jobs:submit", false},
		{[]string{"jobs:submit:*"}, "jobs:submit", true},
		{[]string{"channels:subscribe:orders.*"}, "channels:subscribe:orders.eu.*", true},
		{[]string{"channels:subscribe:*.eu"}, "channels:subscribe:orders.*", false},
		{[]string{"channels:subscribe:any"}, "channels:subscribe:own", false}, // channels, not jobs
		{[]string{"workers:lease:*@*"}, "workers:lease:echo@*", true},
		{[]string{"workers:lease:*@*"}, "workers:lease:echo", true},
		{[]string{"workers:lease:*"}, "workers:lease:echo@*", false},
		{[]string{"workers:lease:a*", "workers:lease:b*"}, "workers:lease:b1", true},
	}
	for _, c := range cases {
		if got := errand.Covers(c.held, c.grant); got != c.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", c.held, c.grant, got, c.want)
		}
	}
}

// FuzzCovers: Covers is sound — whatever a covered grant allows, in one tenant
// or in every tenant, the holder's permission allows too.
func FuzzCovers(f *testing.F) {
	for _, s := range [][4]string{{"jobs:submit:generate-*", "jobs:submit:generate-m*", "jobs:submit", "generate-mx"},
		{"admin", "jobs:read:own", "jobs:read", "own"}, {"jobs:read:any", "jobs:read:own", "jobs:read", "own"},
		{"workers:lease:*@*", "workers:lease:e*@*", "workers:lease", "echo"}, {"a:b:*b", "a:b:*b*b", "a:b", "ab"}} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, held, grant, action, object string) {
		if !errand.Covers([]string{held}, grant) {
			return
		}
		if errand.Grants(grant, action, object) && !errand.Grants(held, action, object) {
			// "any" covers "own" for jobs by meaning, not by glob: a job one owns is one of any.
			if !(strings.HasSuffix(grant, ":own") && object == "own" && errand.Grants(held, action, "any")) {
				t.Fatalf("Covers(%q, %q) but %q allows %s on %q and %q does not", held, grant, grant, action, object, held)
			}
		}
		if errand.GrantsEveryTenant(grant, action, object) && !errand.GrantsEveryTenant(held, action, object) {
			t.Fatalf("Covers(%q, %q) but only %q allows %s on %q in every tenant", held, grant, grant, action, object)
		}
	})
}

func TestGrantsEveryTenant(t *testing.T) {
	cases := []struct {
		perm, action, object string
		want, tenant         bool // every tenant; own tenant
	}{
		{"workers:lease:*@*", "workers:lease", "echo", true, true},
		{"workers:lease:gen-*@*", "workers:lease", "echo", false, false},
		{"workers:lease:*", "workers:lease", "echo", false, true},
		{"admin", "workers:lease", "echo", false, true},
		{"admin@*", "workers:lease", "echo", false, false},
		{"audit:read@*", "audit:read", "", true, true},
		{"oauth:rotate-key@*", "oauth:rotate-key", "", true, true},
	}
	for _, c := range cases {
		if got := errand.GrantsEveryTenant(c.perm, c.action, c.object); got != c.want {
			t.Errorf("GrantsEveryTenant(%q, %q, %q) = %v, want %v", c.perm, c.action, c.object, got, c.want)
		}
		if got := errand.Grants(c.perm, c.action, c.object); got != c.tenant {
			t.Errorf("Grants(%q, %q, %q) = %v, want %v", c.perm, c.action, c.object, got, c.tenant)
		}
	}
}

func TestOwns(t *testing.T) {
	key := errand.Principal{ID: "key_01", Subject: "key_01", Tenant: "acme"}
	jwtKey := errand.Principal{ID: "jwt:https://idp#key_01", Subject: "key_01", Tenant: "acme"}
	alice := errand.Principal{ID: "jwt:https://idp#alice", Subject: "alice", Tenant: "acme"}
	cases := []struct {
		p     errand.Principal
		owner string
		want  bool
	}{
		{key, "key_01", true},
		{jwtKey, "key_01", false}, // a token naming the key's id is not the key
		{jwtKey, "legacy:key_01", false},
		{alice, "jwt:https://idp#alice", true},
		{alice, "legacy:alice", true}, // stored before migration 0008
		{alice, "alice", false},
		{errand.DevPrincipal, "dev", true},
		{errand.Principal{ID: "jwt:https://idp#dev", Subject: "dev", Tenant: "default"}, "dev", false},
		{errand.Principal{Tenant: "acme"}, "", false},
	}
	for _, c := range cases {
		j := &errand.Job{Tenant: c.p.Tenant, Owner: c.owner}
		if got := c.p.Owns(j); got != c.want {
			t.Errorf("%s owns a job of %q = %v, want %v", c.p.ID, c.owner, got, c.want)
		}
	}
	if (&errand.Job{Tenant: "globex", Owner: "key_01"}).Owner == "" || key.Owns(&errand.Job{Tenant: "globex", Owner: "key_01"}) {
		t.Errorf("a job of another tenant is owned")
	}
}

func TestRedactLeases(t *testing.T) {
	tok := strings.Repeat("ab12", 8)
	cases := []struct{ in, want string }{
		{"/v1/leases/lease_job_01JD." + tok + "/heartbeat", "/v1/leases/lease_job_01JD.[redacted]/heartbeat"},
		{"lease lease_job_01JD." + tok + " is not held", "lease lease_job_01JD.[redacted] is not held"},
		{`"lease_job_1.x?y", lease_job_2.`, `"lease_job_1.[redacted]?y", lease_job_2.`},
		{"no lease here", "no lease here"},
		{"lease_lease_job_1.t", "lease_lease_job_1.[redacted]"},
	}
	for _, c := range cases {
		if got := errand.RedactLeases(c.in); got != c.want {
			t.Errorf("RedactLeases(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzRedactLeases: a lease token never survives redaction, wherever it is.
func FuzzRedactLeases(f *testing.F) {
	f.Add("/v1/leases/", "/heartbeat", "job_01JD")
	f.Add("lease ", " is not held", "job_x")
	f.Add("lease_", ".", "")
	f.Fuzz(func(t *testing.T, before, after, jobID string) {
		tok := "0123456789abcdef0123456789abcdef"
		if !regexp.MustCompile(`^job_[A-Za-z0-9]+$`).MatchString(jobID) {
			return
		}
		in := before + errand.LeasePrefix + jobID + "." + tok + after
		if got := errand.RedactLeases(in); strings.Contains(got, tok) {
			t.Fatalf("RedactLeases(%q) = %q keeps the token", in, got)
		}
	})
}
