package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/sqlrow"
)

// The driver's statements are sqlrow's, rendered for SQLite once.
var queries = sqlrow.SQLite.Queries()

// writeStmts are prepared once on the writer's connection: the statements a
// busy store runs most (parsing them for every caller cost a tenth of the
// server's CPU under load), and the group commit's own.
type writeStmts struct {
	byQuery                                                 map[string]*sql.Stmt
	lastID                                                  map[string]*sql.Stmt // INSERT … RETURNING seq, run as the INSERT alone
	limited                                                 limitStmts
	begin, commit, rollback, savepoint, release, rollbackTo *sql.Stmt
}

// preparedWrites are the shared statements the writer prepares.
var preparedWrites = []string{queries.InsertJob, queries.UpdateJob, queries.GetJob, queries.JobByIdempotencyKey,
	queries.DeleteJob, queries.DeleteEvents, queries.InsertEvent, queries.QueuedJobs, queries.QueuedTenantJobs,
	queries.CountRunning, queries.ExpiredLeases, queries.DueScheduled, queries.ExpiredJobs, queries.InsertDelivery,
	queries.UpdateDelivery, queries.InsertAttempt, schedule.OperationFlow, schedule.LockStartTAT, schedule.PutStartTAT, schedule.RunningByKey}

// schedule are the flow-control statements a lease may run.
var schedule = sqlrow.SQLite.ScheduleQueries()

func (s *writeStmts) prepare(ctx context.Context, c *sql.Conn) error {
	var err error
	if s.byQuery, err = prepareAll(ctx, c.PrepareContext, preparedWrites); err != nil {
		return err
	}
	if s.lastID, err = prepareLastID(ctx, c); err != nil {
		return err
	}
	own, err := prepareAll(ctx, c.PrepareContext, []string{"BEGIN IMMEDIATE", "COMMIT", "ROLLBACK", "SAVEPOINT r", "RELEASE r", "ROLLBACK TO r"})
	if err != nil {
		return err
	}
	s.begin, s.commit, s.rollback = own["BEGIN IMMEDIATE"], own["COMMIT"], own["ROLLBACK"]
	s.savepoint, s.release, s.rollbackTo = own["SAVEPOINT r"], own["RELEASE r"], own["ROLLBACK TO r"]
	for k, st := range own {
		s.byQuery[k] = st
	}
	return nil
}

func (s *writeStmts) close() { closeAll(s.byQuery); closeAll(s.lastID); s.limited.close() }

// returningSeq are the inserts whose RETURNING seq the writer answers from
// the statement's last insert id: through database/sql, RETURNING makes a
// row set to read, which cost an event's insert twice what the INSERT alone
// does (half of a batched cycle's InsertEvent).
var returningSeq = []string{queries.InsertEvent, queries.InsertAudit}

// prepareLastID prepares each of returningSeq without its RETURNING, keyed by
// the statement with it.
func prepareLastID(ctx context.Context, c *sql.Conn) (map[string]*sql.Stmt, error) {
	out := make(map[string]*sql.Stmt, len(returningSeq))
	for _, q := range returningSeq {
		bare, ok := strings.CutSuffix(strings.TrimSpace(q), " RETURNING seq")
		if !ok {
			closeAll(out)
			return nil, fmt.Errorf("sqlite: %.40q does not end with RETURNING seq", q)
		}
		st, err := c.PrepareContext(ctx, bare)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out[q] = st
	}
	return out, nil
}

// lastIDRow is the row of an INSERT … RETURNING seq run as the INSERT alone.
type lastIDRow struct {
	id  int64
	err error
}

func (r lastIDRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	p, ok := dest[0].(*int64)
	if len(dest) != 1 || !ok {
		return fmt.Errorf("sqlite: RETURNING seq scans into one *int64")
	}
	*p = r.id
	return nil
}

// readStmts are prepared on the read pool.
type readStmts struct {
	byQuery map[string]*sql.Stmt
	limited limitStmts
}

func (s *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	var err error
	s.byQuery, err = prepareAll(ctx, db.PrepareContext,
		[]string{queries.GetTenantJob, queries.ListEvents, queries.NextScheduled, queries.NextLeaseEnd, qLogHead})
	return err
}

func (s *readStmts) close() { closeAll(s.byQuery); s.limited.close() }

func prepareAll(ctx context.Context, prep func(context.Context, string) (*sql.Stmt, error), qs []string) (map[string]*sql.Stmt, error) {
	out := make(map[string]*sql.Stmt, len(qs))
	for _, q := range qs {
		st, err := prep(ctx, q)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("prepare %q: %w", strings.Join(strings.Fields(q)[:min(3, len(strings.Fields(q)))], " "), err)
		}
		out[q] = st
	}
	return out, nil
}

func closeAll(stmts map[string]*sql.Stmt) {
	for _, st := range stmts {
		st.Close()
	}
}

// txn is the storage.Tx of one request inside a group commit: sqlrow's,
// over the writer's connection.
type txn struct {
	sqlrow.Tx
	c storage.Commit
}

var _ storage.Tx = (*txn)(nil)

func newTxn(w *writer) *txn {
	t := &txn{}
	t.Tx = sqlrow.Tx{Conn: conn{w}, Q: queries, Dialect: sqlrow.SQLite, Commit: &t.c, Interpret: interpretError,
		Hooks: &w.store.hooks, Self: t}
	return t
}

func (t *txn) reset() { t.c = storage.Commit{} }

// conn runs the transaction's statements on the writer's connection, under
// the writer's context, never a caller's: an interrupted statement could
// roll back the whole shared transaction. A statement the writer prepared
// runs prepared.
type conn struct{ w *writer }

func (c conn) Exec(q string, args ...any) (int64, error) {
	c.w.wrote = true
	var res sql.Result
	var err error
	if st := c.w.stmts.byQuery[q]; st != nil {
		res, err = st.ExecContext(c.w.ctx, args...)
	} else {
		res, err = c.w.conn.ExecContext(c.w.ctx, q, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c conn) ExecRow(q string, args ...any) sqlrow.Row {
	c.w.wrote = true
	if st := c.w.stmts.lastID[q]; st != nil {
		res, err := st.ExecContext(c.w.ctx, args...)
		if err != nil {
			return lastIDRow{err: err}
		}
		id, err := res.LastInsertId()
		return lastIDRow{id: id, err: err}
	}
	return c.QueryRow(q, args...)
}

func (c conn) Query(q string, args ...any) (sqlrow.Rows, error) {
	if st := c.w.stmts.byQuery[q]; st != nil {
		if r, ok, err := c.w.stmts.limited.queryLimited(c.w.ctx, c.w.conn.PrepareContext, q, args); ok {
			return r, err
		}
		return rowsOf(st.QueryContext(c.w.ctx, args...))
	}
	return rowsOf(c.w.conn.QueryContext(c.w.ctx, q, args...))
}

// QueryCached runs a statement the writer keeps prepared once it has seen it
// (sqlrow.CachedQuerier: for statements with few texts).
func (c conn) QueryCached(q string, args ...any) (sqlrow.Rows, error) {
	st, err := c.w.stmts.limited.get(c.w.ctx, c.w.conn.PrepareContext, q)
	if err != nil {
		return nil, err
	}
	return rowsOf(st.QueryContext(c.w.ctx, args...))
}

func (c conn) QueryRow(q string, args ...any) sqlrow.Row {
	if st := c.w.stmts.byQuery[q]; st != nil {
		return st.QueryRowContext(c.w.ctx, args...)
	}
	return c.w.conn.QueryRowContext(c.w.ctx, q, args...)
}

// readDB runs reads on the read pool, prepared where the pool has the statement.
type readDB struct{ s *Store }

func (d readDB) Query(ctx context.Context, q string, args ...any) (sqlrow.Rows, error) {
	if st := d.s.read.byQuery[q]; st != nil {
		if r, ok, err := d.s.read.limited.queryLimited(ctx, d.s.rdb.PrepareContext, q, args); ok {
			return r, err
		}
		return rowsOf(st.QueryContext(ctx, args...))
	}
	return rowsOf(d.s.rdb.QueryContext(ctx, q, args...))
}

func (d readDB) QueryRow(ctx context.Context, q string, args ...any) sqlrow.Row {
	if st := d.s.read.byQuery[q]; st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.s.rdb.QueryRowContext(ctx, q, args...)
}

// scanDB runs lists on the scan pool: however many run, point reads never
// wait behind them for a connection.
type scanDB struct{ s *Store }

func (d scanDB) Query(ctx context.Context, q string, args ...any) (sqlrow.Rows, error) {
	return rowsOf(d.s.sdb.QueryContext(ctx, q, args...))
}

func (d scanDB) QueryRow(ctx context.Context, q string, args ...any) sqlrow.Row {
	return d.s.sdb.QueryRowContext(ctx, q, args...)
}

// ListJobs reads committed jobs newest first, on the scan pool.
func (s *Store) ListJobs(ctx context.Context, p storage.ListJobsParams) ([]*errand.Job, error) {
	return s.scan.ListJobs(ctx, p)
}

// ListDeliveries reads deliveries newest first, on the scan pool.
func (s *Store) ListDeliveries(ctx context.Context, p storage.ListDeliveriesParams) ([]*errand.Delivery, error) {
	return s.scan.ListDeliveries(ctx, p)
}

// qLogHead is the highest seq the events table handed out: AUTOINCREMENT
// keeps it in sqlite_sequence, deletes or not (or the highest stored, if a
// copy put rows there without it).
const qLogHead = `SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
	coalesce((SELECT max(seq) FROM events), 0))`

// LogHead reads the highest cursor the log has handed out.
func (s *Store) LogHead(ctx context.Context) (int64, error) {
	var head int64
	err := readDB{s}.QueryRow(ctx, qLogHead).Scan(&head)
	return head, err
}

// rows is *sql.Rows as sqlrow.Rows (whose Close returns nothing).
type rows struct{ *sql.Rows }

func (r rows) Close() { r.Rows.Close() }

func rowsOf(r *sql.Rows, err error) (sqlrow.Rows, error) {
	if err != nil {
		return nil, err
	}
	return rows{r}, nil
}

// Setting returns the stored value of key, storing value first if there is none.
func (s *Store) Setting(ctx context.Context, key, value string) (string, error) {
	var out string
	err := s.w.do(ctx, func(storage.Tx) error {
		return conn{s.w}.ExecRow(queries.Setting, key, value).Scan(&out)
	})
	return out, err
}
