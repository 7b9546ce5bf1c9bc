package channel

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"orders", "orders", true},
		{"orders", "orders.created", false},
		{"orders.*", "orders.created", true},
		{"orders.*", "orders", false},
		{"orders.*", "orders.eu.created", false},
		{"orders.>", "orders.eu.created", true},
		{"orders.>", "orders", false},
		{"*.created", "orders.created", true},
		{">", "anything.at.all", true},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
	}
	for _, tt := range tests {
		if got := MatchPattern(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
	for _, bad := range []string{"", ".a", "a.", "a..b", "job_01", "a b", "a/b", string(make([]byte, 201))} {
		if ValidName(bad) {
			t.Errorf("ValidName(%q) = true", bad)
		}
	}
	for _, p := range []string{"orders.*", "orders.>", ">", "*.x"} {
		if !ValidPattern(p) {
			t.Errorf("ValidPattern(%q) = false", p)
		}
	}
	for _, p := range []string{"orders.>.x", "or*ders", "", ">.a"} {
		if ValidPattern(p) {
			t.Errorf("ValidPattern(%q) = true", p)
		}
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("orders.*", "orders.created")
	f.Add(">", "a.b")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if ValidName(name) && ValidPattern(pattern) && pattern == name && !MatchPattern(pattern, name) {
			t.Fatalf("a name does not match itself as a pattern: %q", name)
		}
	})
}
