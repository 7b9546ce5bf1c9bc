// Package sqlrow is the row code errand's SQL drivers share, written once:
// the column lists, the query bodies both dialects run, one scanner per row
// type (over Row, which both *sql.Row/*sql.Rows and pgx.Row satisfy), the
// argument lists that write each row type, and the storage.Tx and
// storage.Reader methods whose SQL is the same in both (Tx, Reader).
//
// A driver renders the shared bodies for its dialect once (Dialect.Queries:
// placeholders, row locks, the few functions spelled differently), hands the
// shared methods a Conn (its transaction's statements, run under its own
// context) or a DB (its read pool), and keeps for itself only what its
// dialect does differently: SQLite's prepared statements and group-commit
// writer; PostgreSQL's pipelined unnest batches, COPY, group commit and
// tailer (which override InsertJob, UpdateJob, InsertEvent, GetJob, LockJobs,
// CountRunning and ListEvents).
//
// Adding a job column touches the migrations, JobColumns, ScanJob, the
// argument lists in args.go, and PostgreSQL's batch arrays (batch.go).
package sqlrow

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/errandhq/errand/storage"
)

// Dialect is how one database spells the shared query bodies.
type Dialect struct {
	// numbered: placeholders are $1, $2 … (PostgreSQL) rather than ? (SQLite).
	numbered bool
	// locks: rows lock (PostgreSQL). SQLite's one writer holds every row, so
	// FOR UPDATE and SKIP LOCKED mean nothing there.
	locks bool
	// greatest is the function of the larger of two values.
	greatest string
	// octets is the function of a value's length in bytes.
	octets string
	// cutsInSQL: pages are cut by their byte budget in the statement
	// (CutByBytes), not by the driver stepping rows until the budget is spent
	// (CollectBytes). PostgreSQL cannot leave a result early without reading it
	// (pgx drains it on Close), and octet_length reads no TOAST; SQLite steps
	// one row at a time, and its length() of a filtered row loads the row's
	// overflow pages, so a size column would read every blob.
	cutsInSQL bool
}

// The dialects.
var (
	SQLite     = Dialect{greatest: "max(", octets: "length("}
	PostgreSQL = Dialect{numbered: true, locks: true, greatest: "greatest(", octets: "octet_length(", cutsInSQL: true}
)

// The markers a shared body carries where the dialects differ.
const (
	// lockRow ends a read of rows the transaction goes on to change: FOR
	// UPDATE where rows lock.
	lockRow = " {lock}"
	// claimRows ends a read of rows a task claims: FOR UPDATE SKIP LOCKED
	// where rows lock, so two transactions never claim the same row.
	claimRows = " {claim}"
	// greatest is the larger of two values: greatest( on PostgreSQL, max( on SQLite.
	greatest = "{greatest}("
	// octets is a value's length in bytes: octet_length( on PostgreSQL,
	// length( on SQLite (of a BLOB).
	octets = "{octets}("
)

// Render turns a shared query body into the dialect's: the markers become
// its locking clauses and functions, and on PostgreSQL each ? becomes $1, $2,
// … in order (the bodies hold no ? inside string literals).
func (d Dialect) Render(body string) string {
	lock, claim := "", ""
	if d.locks {
		lock, claim = " FOR UPDATE", " FOR UPDATE SKIP LOCKED"
	}
	q := strings.NewReplacer(lockRow, lock, claimRows, claim, greatest, d.greatest, octets, d.octets).Replace(body)
	if !d.numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for _, part := range strings.SplitAfter(q, "?") {
		if p, ok := strings.CutSuffix(part, "?"); ok {
			n++
			b.WriteString(p)
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteString(part)
	}
	return b.String()
}

// Queries renders every shared body for the dialect; drivers do it once.
func (d Dialect) Queries() *Queries {
	q := bodies
	if d.cutsInSQL {
		q.QueuedJobs, q.QueuedTenantJobs, q.ListEvents = cutBodies.QueuedJobs, cutBodies.QueuedTenantJobs, cutBodies.ListEvents
	}
	v := reflect.ValueOf(&q).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		f.SetString(d.Render(f.String()))
	}
	return &q
}

// budget is what a statement of a page with the byte budget maxBytes takes
// after args: the budget where the statement cuts the page, nothing where the
// driver does (CollectBytes).
func (d Dialect) budget(args []any, maxBytes int64) []any {
	if d.cutsInSQL {
		return append(args, storage.ByteBudget(maxBytes))
	}
	return args
}

// AnyOf is a condition "col is one of values" and its arguments, with ?
// placeholders (Render numbers them): one array argument on PostgreSQL (one
// statement text whatever the count, so its prepared plan is reused), a
// list on SQLite.
func (d Dialect) AnyOf(col string, values []string) (string, []any) {
	if d.numbered {
		return col + " = ANY(?)", []any{values}
	}
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return col + " IN (?" + strings.Repeat(", ?", max(len(values)-1, 0)) + ")", args
}

// Where builds a WHERE clause with ? placeholders.
type Where struct {
	conds []string
	args  []any
}

// Add adds a condition (with one ? per argument).
func (w *Where) Add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// SQL is the conditions joined by AND ("1 = 1" when there are none).
func (w *Where) SQL() string {
	if len(w.conds) == 0 {
		return "1 = 1"
	}
	return strings.Join(w.conds, " AND ")
}

// Args are the conditions' arguments, in order, then extra (a LIMIT's).
func (w *Where) Args(extra ...any) []any { return append(w.args, extra...) }
