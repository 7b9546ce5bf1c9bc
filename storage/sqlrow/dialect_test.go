package sqlrow

import (
	"reflect"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	body := `SELECT x FROM t WHERE a = ? AND b IN (?, ?) ORDER BY x LIMIT ?` + claimRows
	for _, c := range []struct {
		d    Dialect
		want string
	}{
		{SQLite, `SELECT x FROM t WHERE a = ? AND b IN (?, ?) ORDER BY x LIMIT ?`},
		{PostgreSQL, `SELECT x FROM t WHERE a = $1 AND b IN ($2, $3) ORDER BY x LIMIT $4 FOR UPDATE SKIP LOCKED`},
	} {
		if got := c.d.Render(body); got != c.want {
			t.Errorf("Render = %q, want %q", got, c.want)
		}
		if again := c.d.Render(c.want); again != c.want {
			t.Errorf("Render of a rendered query = %q, want it unchanged", again)
		}
	}
	if got := PostgreSQL.Render(`UPDATE t SET n = ` + greatest + `n, ?) WHERE id = ?` + lockRow); got != `UPDATE t SET n = greatest(n, $1) WHERE id = $2 FOR UPDATE` {
		t.Errorf("PostgreSQL greatest/lock = %q", got)
	}
	if got := SQLite.Render(`SET n = ` + greatest + `n, ?)` + lockRow); got != `SET n = max(n, ?)` {
		t.Errorf("SQLite greatest/lock = %q", got)
	}
}

// TestQueriesRendered: every shared body renders without a marker left, and
// PostgreSQL's hold no ?.
func TestQueriesRendered(t *testing.T) {
	for _, d := range []Dialect{SQLite, PostgreSQL} {
		v := reflect.ValueOf(*d.Queries())
		for i := range v.NumField() {
			q := v.Field(i).String()
			if q == "" || strings.Contains(q, "{") || (d.numbered && strings.Contains(q, "?")) {
				t.Errorf("%s rendered as %q", v.Type().Field(i).Name, q)
			}
		}
	}
}

func TestAnyOf(t *testing.T) {
	ids := []string{"a", "b", "c"}
	if cond, args := SQLite.AnyOf("id", ids); cond != "id IN (?, ?, ?)" || !reflect.DeepEqual(args, []any{"a", "b", "c"}) {
		t.Errorf("SQLite.AnyOf = %q, %v", cond, args)
	}
	if cond, args := PostgreSQL.AnyOf("id", ids); cond != "id = ANY(?)" || !reflect.DeepEqual(args, []any{ids}) {
		t.Errorf("PostgreSQL.AnyOf = %q, %v", cond, args)
	}
}
