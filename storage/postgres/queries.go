package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/sqlrow"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The driver's statements are sqlrow's, rendered for PostgreSQL once: rows a
// transaction goes on to change are locked (FOR UPDATE); rows a task claims
// skip those another transaction holds (SKIP LOCKED), so nodes never take
// the same one.
var queries = sqlrow.PostgreSQL.Queries()

// txn is the storage.Tx of one transaction: sqlrow's, over its connection,
// with job and event writes kept for batches (batch.go), LockJobs and the
// concurrency lock its own.
type txn struct {
	sqlrow.Tx
	s    *Store
	conn *pgx.Conn
	ctx  context.Context // the transaction's own: a caller's cancel never interrupts it
	// lead are the framing statements waiting to go in front of the next
	// (wire.go); open is set from begin until COMMIT is sent or ROLLBACK;
	// committing asks the next flush to end with COMMIT; commitFailed and
	// leadFailed say a COMMIT or a framing statement failed.
	lead                     []string
	open, committing         bool
	commitFailed, leadFailed bool
	// mine are the jobs this transaction locked or inserted: an update of
	// them cannot find the row gone (see commit).
	mine   map[string]struct{}
	c      storage.Commit
	maxSeq int64
	// lost is set when a batch of kept updates found fewer rows than it was
	// sent for: a job to update did not exist (see queueUpdates).
	lost error
	// Kept writes (batch.go) and the jobs LockJobs read.
	updates []*kept
	updated map[string]int
	events  []*errand.Event
	inserts []*kept
	locked  map[string]*errand.Job
	// group is set when the transaction runs a group of calls (group.go).
	group bool
	call  call
	// sent are the events sent (with their jobs, for the Observer), less
	// those of calls rolled back to their savepoint; began is when it began.
	sent  []*errand.Event
	began time.Time
}

var _ storage.Tx = (*txn)(nil)

// newTxn is a transaction of s; tx and ctx are set when it begins.
func newTxn(s *Store) *txn {
	t := &txn{s: s}
	t.Tx = sqlrow.Tx{Conn: conn{t}, Q: queries, Dialect: sqlrow.PostgreSQL, Commit: &t.c, Interpret: interpretError,
		Hooks: &s.hooks, Self: t}
	return t
}

// conn sends the transaction's statements after its kept writes (in a
// group, a write goes under the call's savepoint: see send).
type conn struct{ t *txn }

func (c conn) Exec(q string, args ...any) (int64, error) {
	if err := c.t.send(true); err != nil {
		return 0, err
	}
	tag, err := c.t.exec(q, args...)
	return tag.RowsAffected(), err
}

func (c conn) ExecRow(q string, args ...any) sqlrow.Row {
	if err := c.t.send(true); err != nil {
		return sqlrow.ErrRow{Err: err}
	}
	return c.t.row(q, args...)
}

func (c conn) Query(q string, args ...any) (sqlrow.Rows, error) {
	rows, err := c.t.query(q, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (c conn) QueryRow(q string, args ...any) sqlrow.Row { return c.t.queryRow(q, args...) }

// pool runs reads on the connection pool.
type pool struct{ p *pgxpool.Pool }

func (d pool) Query(ctx context.Context, q string, args ...any) (sqlrow.Rows, error) {
	rows, err := d.p.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (d pool) QueryRow(ctx context.Context, q string, args ...any) sqlrow.Row {
	return d.p.QueryRow(ctx, q, args...)
}

// GetJob answers from the jobs LockJobs read, else reads and locks the row.
func (t *txn) GetJob(id string) (*errand.Job, error) {
	if j, ok := t.locked[id]; ok {
		c := *j // the caller changes it; the kept state must not move with it
		return &c, nil
	}
	j, err := t.Tx.GetJob(id) // FOR UPDATE
	if err == nil {
		t.own(id)
	}
	return j, err
}

// own notes a job the transaction locked or inserted.
func (t *txn) own(id string) {
	if t.mine == nil {
		t.mine = map[string]struct{}{}
	}
	t.mine[id] = struct{}{}
}

// qLockJobs reads and locks jobs by id, in id order (so two transactions
// locking overlapping sets do not deadlock).
const qLockJobs = `SELECT ` + sqlrow.JobColumns + ` FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE`

// LockJobs reads and locks the jobs in one statement; GetJob then answers from them.
func (t *txn) LockJobs(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := t.query(qLockJobs, ids)
	jobs, err := sqlrow.Collect(rows, err, sqlrow.ScanJob)
	if err != nil {
		return fmt.Errorf("lock jobs: %w", interpretError(err))
	}
	if t.locked == nil {
		t.locked = make(map[string]*errand.Job, len(jobs))
	}
	for _, j := range jobs {
		t.locked[j.ID] = j
		t.own(j.ID)
	}
	return nil
}

// InsertJob keeps a copy of j for the transaction's next statement batch.
func (t *txn) InsertJob(j *errand.Job) error {
	k, err := keep(j)
	if err != nil {
		return fmt.Errorf("insert job %s: %w", j.ID, err)
	}
	t.inserts = append(t.inserts, k)
	t.own(j.ID)
	return nil
}

// UpdateJob keeps j's new state; it is written with the transaction's next
// statement batch (see batch.go). A job that does not exist is found out when
// the batch is sent (queueUpdates): ErrNotFound by the time WithTx returns.
func (t *txn) UpdateJob(j *errand.Job) error {
	return t.deferUpdate(j)
}

// DeleteJob removes the job and its events (sent at once) and forgets it
// was locked.
func (t *txn) DeleteJob(id string) error {
	err := t.Tx.DeleteJob(id)
	delete(t.locked, id)
	delete(t.mine, id) // an update of it now finds no row (see commit)
	return err
}

// InsertEvent keeps e for the transaction's next statement batch (batch.go),
// which sets e.Seq before the commit.
func (t *txn) InsertEvent(e *errand.Event) error {
	t.events = append(t.events, e)
	return t.s.hooks.EventAppended(t, e)
}

// CountRunning counts an operation's running jobs. It first takes a lock on the
// operation for the rest of the transaction, so two nodes leasing it at once
// cannot both see room under its concurrency limit.
func (t *txn) CountRunning(operation string) (int, error) {
	if err := t.send(false); err != nil {
		return 0, err
	}
	if _, err := t.exec(`SELECT pg_advisory_xact_lock($1)`, t.s.lockKey("concurrency:"+operation)); err != nil {
		return 0, fmt.Errorf("lock operation: %w", err)
	}
	return t.Tx.CountRunning(operation)
}

// qPutUsages writes usage rows whole, all in one statement (see sqlrow's
// PutUsage; a row's key appears once in a call).
const qPutUsages = `INSERT INTO usage (` + sqlrow.UsageColumns + `) SELECT * FROM unnest($1::text[], $2::text[],
	$3::int[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
	$11::bigint[], $12::bigint[], $13::bytea[], $14::bytea[])
	ON CONFLICT (tenant, step, bucket, operation, node) DO UPDATE SET submitted = excluded.submitted,
	succeeded = excluded.succeeded, failed = excluded.failed, canceled = excluded.canceled, events = excluded.events,
	deliveries = excluded.deliveries, artifact_bytes = excluded.artifact_bytes, run_time = excluded.run_time,
	queue_wait = excluded.queue_wait`

// PutUsage writes usage rows in one statement (sqlrow's sends one per row).
func (t *txn) PutUsage(rows []storage.UsageRow) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	tenant, op, node := make([]string, n), make([]string, n), make([]string, n)
	step := make([]int32, n)
	bucket, sub, succ, fail, canc, evs, del, bytes := make([]int64, n), make([]int64, n), make([]int64, n),
		make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	run, wait := make([][]byte, n), make([][]byte, n)
	for i, u := range rows {
		tenant[i], op[i], node[i], step[i], bucket[i] = u.Tenant, u.Operation, u.Node, int32(u.Step/time.Second), storage.Micros(u.Bucket)
		sub[i], succ[i], fail[i], canc[i], evs[i], del[i], bytes[i] = u.Submitted, u.Succeeded, u.Failed, u.Canceled, u.Events,
			u.Deliveries, u.ArtifactBytes
		run[i], wait[i] = u.RunTime, u.QueueWait
	}
	if _, err := t.Conn.Exec(qPutUsages, tenant, op, step, bucket, node, sub, succ, fail, canc, evs, del, bytes, run, wait); err != nil {
		return fmt.Errorf("put usage: %w", err)
	}
	return nil
}

// ListEvents reads a stream's committed events. A page never reaches past this
// node's horizon (a lower seq might still commit); when committed events lie
// beyond it, such as the caller's own just now, it waits for the tailer to pass
// them, so a transaction that returned is always seen.
func (s *Store) ListEvents(ctx context.Context, p storage.ListEventsParams) ([]*errand.Event, error) {
	// The horizon is read before the events: every seq up to it had committed
	// (and so is in this read) or never will.
	h := s.tail.horizon()
	out, err := s.reader.ListEventsUpTo(ctx, p, math.MaxInt64)
	if err != nil || len(out) == 0 || out[len(out)-1].Seq <= h {
		return out, err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	s.tail.waitFor(wctx, out[len(out)-1].Seq)
	cancel()
	// Read again up to the new horizon: the first read may have missed lower
	// seqs that committed since.
	return s.reader.ListEventsUpTo(ctx, p, s.tail.horizon())
}

// LogHead reads the highest seq handed out: the events' sequence (taken by
// inserts on every node, committed or not) or the highest stored, if higher.
func (s *Store) LogHead(ctx context.Context) (int64, error) {
	var head int64
	err := s.pool.QueryRow(ctx, s.qHead).Scan(&head)
	return head, interpretError(err)
}

// ListLog reads every stream's committed events after a cursor. As
// ListEvents, a page never reaches past this node's horizon, and when
// committed events lie beyond it, it waits for the tailer to pass them (a
// transaction that returned is always seen).
func (s *Store) ListLog(ctx context.Context, after int64, limit int) ([]storage.LogEvent, error) {
	h := s.tail.horizon()
	out, err := s.reader.ListLogUpTo(ctx, after, math.MaxInt64, limit)
	if err != nil || len(out) == 0 || out[len(out)-1].Seq <= h {
		return out, err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	s.tail.waitFor(wctx, out[len(out)-1].Seq)
	cancel()
	return s.reader.ListLogUpTo(ctx, after, s.tail.horizon(), limit)
}

// RunningByKey counts an operation's running jobs by concurrency key, after
// taking the operation's lock as CountRunning does (the same lock: a lease
// checks both limits under one).
func (t *txn) RunningByKey(operation string) (map[string]int, error) {
	if err := t.send(false); err != nil {
		return nil, err
	}
	if _, err := t.exec(`SELECT pg_advisory_xact_lock($1)`, t.s.lockKey("concurrency:"+operation)); err != nil {
		return nil, fmt.Errorf("lock operation: %w", err)
	}
	return t.Tx.RunningByKey(operation)
}

// QueuedHeads claims the heads of several fair keys in one statement: a
// LATERAL sub-select per key of an unnest of the quotas (FOR UPDATE, which
// cannot go with sqlrow's UNION ALL, can in a LATERAL sub-select), in the
// quotas' order; the byte budget is spent as rows are read.
func (t *txn) QueuedHeads(p storage.QueuedParams, quotas []storage.KeyQuota) ([]*errand.Job, error) {
	if len(quotas) == 0 {
		return nil, nil
	}
	keys, ns := make([]string, len(quotas)), make([]int32, len(quotas))
	for i, q := range quotas {
		keys[i], ns[i] = q.Key, int32(q.N)
	}
	var w sqlrow.Where
	sqlrow.HeadsWhere(&w, sqlrow.PostgreSQL, p, "k.key")
	q := sqlrow.PostgreSQL.Render(`SELECT ` + sqlrow.JobColumns + ` FROM unnest(?::text[], ?::int[]) WITH ORDINALITY AS k(key, n, ord)
		CROSS JOIN LATERAL (SELECT ` + sqlrow.JobColumns + ` FROM jobs WHERE status = 'queued' AND ` + w.SQL() + `
		ORDER BY priority DESC, run_at, id LIMIT k.n FOR UPDATE SKIP LOCKED) j ORDER BY k.ord`)
	rows, err := t.query(q, append([]any{keys, ns}, w.Args()...)...)
	js, err := sqlrow.CollectBytes(rows, err, p.MaxBytes, sqlrow.ScanJob, (*errand.Job).Bytes)
	if err != nil {
		return nil, fmt.Errorf("queued heads of %s: %w", p.Operation, interpretError(err))
	}
	return js, nil
}
