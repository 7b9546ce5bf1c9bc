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

// FuzzGlob: Glob agrees with the equivalent regular expression.
func FuzzGlob(f *testing.F) {
	f.Add("orders.*", "orders.eu")
	f.Add("a*b*c", "aXbYc")
	f.Add("***", "")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(name) {
			return // the reference regexp takes only UTF-8 (names are UTF-8)
		}
		got := errand.Glob(pattern, name)
		ref := regexp.MustCompile(`(?s)^` + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, `.*`) + `$`)
		if want := ref.MatchString(name); got != want {
			t.Fatalf("Glob(%q, %q) = %v, the regexp says %v", pattern, name, got, want)
		}
		if !errand.Glob("*", name) {
			t.Fatalf(`Glob("*", %q) = false`, name)
		}
	})
}
