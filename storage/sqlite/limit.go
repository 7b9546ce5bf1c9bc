package sqlite

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"

	"github.com/errandhq/errand/storage/sqlrow"
)

// SQLite prepares a statement whose LIMIT is a bound parameter again every
// time it runs: the planner reads the variable, so binding it anew expires
// the plan. In the one-job-per-request cycle that re-parsing was 9 % of the
// server's CPU (QueuedJobs on every lease). The driver's prepared statements
// therefore carry their limit in the text — the smallest power of two at
// least the limit asked, so a query has a handful of texts — and the rows are
// cut at the limit asked while they are read (an index scan in ORDER BY order
// produces rows lazily, so the extra room costs nothing).

// literalLimit rewrites a query ending in "LIMIT ?" whose last argument is
// the limit: the query with the limit's bucket in its text, the remaining
// arguments and the limit; ok is false for any other query.
func literalLimit(q string, args []any) (string, []any, int, bool) {
	if len(args) == 0 || !strings.HasSuffix(q, "LIMIT ?") {
		return "", nil, 0, false
	}
	n, ok := args[len(args)-1].(int)
	if !ok || n < 1 {
		return "", nil, 0, false
	}
	bucket := 1
	for bucket < n {
		bucket *= 2
	}
	return q[:len(q)-1] + strconv.Itoa(bucket), args[:len(args)-1], n, true
}

// limitStmts are the literal-limit texts of prepared queries, prepared on
// first use. The writer's are used by one goroutine, the read pool's by many.
type limitStmts struct {
	mu     sync.Mutex
	byText map[string]*sql.Stmt
}

func (l *limitStmts) get(ctx context.Context, prep func(context.Context, string) (*sql.Stmt, error), text string) (*sql.Stmt, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.byText[text]; st != nil {
		return st, nil
	}
	st, err := prep(ctx, text)
	if err != nil {
		return nil, err
	}
	if l.byText == nil {
		l.byText = map[string]*sql.Stmt{}
	}
	l.byText[text] = st
	return st, nil
}

func (l *limitStmts) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	closeAll(l.byText)
	l.byText = nil
}

// queryLimited runs a prepared query with a literal limit, or reports ok
// false when q has none.
func (l *limitStmts) queryLimited(ctx context.Context, prep func(context.Context, string) (*sql.Stmt, error), q string, args []any) (_ sqlrow.Rows, ok bool, err error) {
	text, rest, n, ok := literalLimit(q, args)
	if !ok {
		return nil, false, nil
	}
	st, err := l.get(ctx, prep, text)
	if err != nil {
		return nil, true, err
	}
	r, err := rowsOf(st.QueryContext(ctx, rest...))
	if err != nil {
		return nil, true, err
	}
	return &cappedRows{Rows: r, left: n}, true, nil
}

// cappedRows stops after left rows.
type cappedRows struct {
	sqlrow.Rows
	left int
}

func (r *cappedRows) Next() bool {
	if r.left <= 0 {
		return false
	}
	r.left--
	return r.Rows.Next()
}
