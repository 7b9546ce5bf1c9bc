package sqlite

import "testing"

func TestLiteralLimit(t *testing.T) {
	for _, c := range []struct {
		q     string
		args  []any
		text  string
		limit int
		ok    bool
	}{
		{"SELECT id FROM jobs WHERE a = ? LIMIT ?", []any{"x", 1}, "SELECT id FROM jobs WHERE a = ? LIMIT 1", 1, true},
		{"SELECT id FROM jobs WHERE a = ? LIMIT ?", []any{"x", 3}, "SELECT id FROM jobs WHERE a = ? LIMIT 4", 3, true},
		{"SELECT id FROM jobs WHERE a = ? LIMIT ?", []any{"x", 1000}, "SELECT id FROM jobs WHERE a = ? LIMIT 1024", 1000, true},
		{"SELECT id FROM jobs WHERE a = ?", []any{"x"}, "", 0, false},
		{"SELECT id FROM jobs LIMIT ?", []any{int64(5)}, "", 0, false}, // not an int: left as it is
	} {
		text, rest, n, ok := literalLimit(c.q, c.args)
		if ok != c.ok || text != c.text || n != c.limit || (ok && len(rest) != len(c.args)-1) {
			t.Errorf("literalLimit(%q, %v) = %q, %v, %d, %v; want %q, %d, %v", c.q, c.args, text, rest, n, ok, c.text, c.limit, c.ok)
		}
	}
}
