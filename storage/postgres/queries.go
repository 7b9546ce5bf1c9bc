package postgres

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/jackc/pgx/v5"
)

// jobCols is the column list every job query reads, in scanJob's order.
const jobCols = `id, tenant, owner, operation, status, input, result, error, progress, attempt,
	max_attempts, priority, timeout_seconds, cancel_requested, metadata, callback_url, created_at,
	run_at, started_at, finished_at, lease_token, lease_expires_at, worker, idempotency_key,
	request_hash, expires_at, artifacts`

// The queries, named as in the SQLite driver. Rows a transaction goes on to
// change are locked (FOR UPDATE); rows a task claims skip those another
// transaction holds (SKIP LOCKED), so nodes never take the same one.
const (
	qInsertJob = `INSERT INTO jobs (` + jobCols + `) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)`
	qGetJob         = `SELECT ` + jobCols + ` FROM jobs WHERE id = $1 FOR UPDATE`
	qGetTenantJob   = `SELECT ` + jobCols + ` FROM jobs WHERE id = $1 AND tenant = $2`
	qFindIdempotent = `SELECT ` + jobCols + ` FROM jobs WHERE tenant = $1 AND owner = $2 AND idempotency_key = $3`
	qDeleteJob      = `DELETE FROM jobs WHERE id = $1`
	qDeleteEvents   = `DELETE FROM events WHERE stream = $1`
	qQueuedJobs     = `SELECT ` + jobCols + ` FROM jobs WHERE status = 'queued' AND operation = $1
		ORDER BY priority DESC, run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`
	qQueuedTenantJobs = `SELECT ` + jobCols + ` FROM jobs WHERE status = 'queued' AND tenant = $1 AND operation = $2
		ORDER BY priority DESC, run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED`
	qCountRunning  = `SELECT count(*) FROM jobs WHERE status = 'running' AND operation = $1`
	qExpiredLeases = `SELECT ` + jobCols + ` FROM jobs WHERE status = 'running' AND lease_expires_at < $1
		ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`
	qDueScheduled = `SELECT ` + jobCols + ` FROM jobs WHERE status = 'scheduled' AND run_at <= $1
		ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED`
	qExpiredJobs   = `SELECT id FROM jobs WHERE expires_at IS NOT NULL AND expires_at < $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`
	qStreamFloor   = `SELECT floor FROM stream_floors WHERE tenant = $1 AND stream = $2`
	qExpiredEvents = `SELECT seq, tenant, stream FROM events WHERE expires_at IS NOT NULL AND expires_at < $1
		ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`
	qDeleteEvent = `DELETE FROM events WHERE seq = $1`
	qRaiseFloor  = `INSERT INTO stream_floors (tenant, stream, floor) VALUES ($1, $2, $3)
		ON CONFLICT (tenant, stream) DO UPDATE SET floor = greatest(stream_floors.floor, excluded.floor)`
	qNextScheduled = `SELECT min(run_at) FROM jobs WHERE status = 'scheduled'`
	qNextLeaseEnd  = `SELECT min(lease_expires_at) FROM jobs WHERE status = 'running'`
	qListEvents    = `SELECT ` + eventCols + ` FROM events WHERE stream = $1 AND tenant = $2
		AND seq > $3 AND seq <= $4 ORDER BY seq LIMIT $5`
)

// txn is the storage.Tx of one transaction.
type txn struct {
	s      *Store
	tx     pgx.Tx
	ctx    context.Context // the transaction's own: a caller's cancel never interrupts it
	c      storage.Commit
	maxSeq int64
	// lost is set when a batch of kept updates found fewer rows than it was
	// sent for: a job to update did not exist (see queueUpdates).
	lost error
	// Kept writes (batch.go) and the jobs LockJobs read.
	updates []*errand.Job
	updated map[string]int
	events  []*errand.Event
	inserts []*errand.Job
	locked  map[string]*errand.Job
	// group is set when the transaction runs a group of calls (group.go).
	group bool
	call  call
}

var _ storage.Tx = (*txn)(nil)

func (t *txn) GetJob(id string) (*errand.Job, error) {
	if j, ok := t.locked[id]; ok {
		c := *j // the caller changes it; the kept state must not move with it
		return &c, nil
	}
	return scanJob(t.queryRow(qGetJob, id))
}

// LockJobs reads and locks the jobs in one statement; GetJob then answers from them.
func (t *txn) LockJobs(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	jobs, err := queryJobs(t.query(`SELECT `+jobCols+` FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids))
	if err != nil {
		return fmt.Errorf("lock jobs: %w", err)
	}
	if t.locked == nil {
		t.locked = make(map[string]*errand.Job, len(jobs))
	}
	for _, j := range jobs {
		t.locked[j.ID] = j
	}
	return nil
}

func (t *txn) JobByIdempotencyKey(tenant, owner, key string) (*errand.Job, error) {
	return scanJob(t.queryRow(qFindIdempotent, tenant, owner, key))
}

// InsertJob keeps a copy of j for the transaction's next statement batch.
func (t *txn) InsertJob(j *errand.Job) error {
	c := *j
	t.inserts = append(t.inserts, &c)
	return nil
}

// UpdateJob keeps j's new state; it is written with the transaction's next
// statement batch (see batch.go). A job that does not exist is found out when
// the batch is sent (queueUpdates): ErrNotFound by the time WithTx returns.
func (t *txn) UpdateJob(j *errand.Job) error {
	return t.deferUpdate(j)
}

func (t *txn) DeleteJob(id string) error {
	if _, err := t.exec("delete events", qDeleteEvents, id); err != nil {
		return err
	}
	err := affected(t.exec("delete job", qDeleteJob, id))
	delete(t.locked, id)
	return err
}

// InsertEvent keeps e for the transaction's next statement batch (batch.go),
// which sets e.Seq before the commit.
func (t *txn) InsertEvent(e *errand.Event) error {
	t.events = append(t.events, e)
	return t.s.hooks.EventAppended(t, e)
}

func (t *txn) QueuedJobs(tenant, operation string, limit int) ([]*errand.Job, error) {
	if tenant != "" {
		return queryJobs(t.query(qQueuedTenantJobs, tenant, operation, limit))
	}
	return queryJobs(t.query(qQueuedJobs, operation, limit))
}

// CountRunning counts an operation's running jobs. It first takes a lock on the
// operation for the rest of the transaction, so two nodes leasing it at once
// cannot both see room under its concurrency limit.
func (t *txn) CountRunning(operation string) (int, error) {
	if err := t.send(false); err != nil {
		return 0, err
	}
	if _, err := t.tx.Exec(t.ctx, `SELECT pg_advisory_xact_lock($1)`, t.s.lockKey("concurrency:"+operation)); err != nil {
		return 0, fmt.Errorf("lock operation: %w", err)
	}
	var n int
	err := t.queryRow(qCountRunning, operation).Scan(&n)
	return n, err
}

func (t *txn) ExpiredLeases(now time.Time, limit int) ([]*errand.Job, error) {
	return queryJobs(t.query(qExpiredLeases, storage.Micros(now), limit))
}

func (t *txn) DueScheduled(now time.Time, limit int) ([]*errand.Job, error) {
	return queryJobs(t.query(qDueScheduled, storage.Micros(now), limit))
}

func (t *txn) ExpiredJobs(now time.Time, limit int) ([]string, error) {
	return queryIDs(t.query(qExpiredJobs, storage.Micros(now), limit))
}

func (t *txn) ExpireEvents(now time.Time, limit int) (int, error) {
	rows, err := t.query(qExpiredEvents, storage.Micros(now), limit)
	if err != nil {
		return 0, fmt.Errorf("expired events: %w", err)
	}
	type key struct{ tenant, stream string }
	floors := map[key]int64{}
	var seqs []int64
	for rows.Next() {
		var seq int64
		var k key
		if err := rows.Scan(&seq, &k.tenant, &k.stream); err != nil {
			rows.Close()
			return 0, err
		}
		seqs = append(seqs, seq)
		floors[k] = max(floors[k], seq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, seq := range seqs {
		if _, err := t.exec("delete event", qDeleteEvent, seq); err != nil {
			return 0, err
		}
	}
	for k, f := range floors {
		if _, err := t.exec("raise stream floor", qRaiseFloor, k.tenant, k.stream, f); err != nil {
			return 0, err
		}
	}
	return len(seqs), nil
}

func (t *txn) JobsReady(operation string) { t.c.Add(&storage.Commit{Ready: []string{operation}}) }

func (t *txn) JobsScheduled(runAt time.Time) { t.c.Add(&storage.Commit{Scheduled: runAt}) }

// GetJob reads a committed job.
func (s *Store) GetJob(ctx context.Context, tenant, id string) (*errand.Job, error) {
	return scanJob(s.pool.QueryRow(ctx, qGetTenantJob, id, tenant))
}

// ListJobs reads committed jobs newest first.
func (s *Store) ListJobs(ctx context.Context, p storage.ListJobsParams) ([]*errand.Job, error) {
	w := where{}
	w.add("tenant = ", p.Tenant)
	if p.Before != "" {
		w.add("id < ", p.Before)
	}
	if p.Owner != "" {
		w.add("owner = ANY(", []string{p.Owner, cmp.Or(p.LegacyOwner, p.Owner)})
		w.conds[len(w.conds)-1] += ")"
	}
	if p.Operation != "" {
		w.add("operation = ", p.Operation)
	}
	if p.Status != "" {
		w.add("status = ", string(p.Status))
	}
	q := `SELECT ` + jobCols + ` FROM jobs WHERE ` + w.sql() + ` ORDER BY id DESC LIMIT ` + w.arg(p.Limit)
	return queryJobs(s.pool.Query(ctx, q, w.args...))
}

// ListEvents reads a stream's committed events. A page never reaches past this
// node's horizon (a lower seq might still commit); when committed events lie
// beyond it, such as the caller's own just now, it waits for the tailer to pass
// them, so a transaction that returned is always seen.
func (s *Store) ListEvents(ctx context.Context, p storage.ListEventsParams) ([]*errand.Event, error) {
	// The horizon is read before the events: every seq up to it had committed
	// (and so is in this read) or never will.
	h := s.tail.horizon()
	rows, err := s.pool.Query(ctx, qListEvents, p.Stream, p.Tenant, p.After, int64(math.MaxInt64), p.Limit)
	out, err := collect(rows, err, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	if len(out) == 0 || out[len(out)-1].Seq <= h {
		return out, nil
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	s.tail.waitFor(wctx, out[len(out)-1].Seq)
	cancel()
	// Read again up to the new horizon: the first read may have missed lower
	// seqs that committed since.
	h = s.tail.horizon()
	rows, err = s.pool.Query(ctx, qListEvents, p.Stream, p.Tenant, p.After, h, p.Limit)
	if out, err = collect(rows, err, scanEvent); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// eventCols are the columns scanEvent reads.
const eventCols = `seq, stream, tenant, type, time, data, expires_at`

func scanEvent(row pgx.Row) (*errand.Event, error) {
	e := &errand.Event{}
	var t int64
	var exp *int64
	err := row.Scan(&e.Seq, &e.Stream, &e.Tenant, &e.Type, &t, &e.Data, &exp)
	e.Time, e.ExpiresAt = storage.FromMicros(t), timePtr(exp)
	return e, err
}

// StreamFloor reads the highest cursor retention deleted from a stream.
func (s *Store) StreamFloor(ctx context.Context, tenant, stream string) (int64, error) {
	var f int64
	err := s.pool.QueryRow(ctx, qStreamFloor, tenant, stream).Scan(&f)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	return f, interpretError(err)
}

// NextWakeup reads when the scheduler and the lease reaper next have work.
func (s *Store) NextWakeup(ctx context.Context) (runAt, leaseExpiry time.Time, err error) {
	var a, b *int64
	if err = s.pool.QueryRow(ctx, qNextScheduled).Scan(&a); err != nil {
		return runAt, leaseExpiry, fmt.Errorf("next scheduled: %w", interpretError(err))
	}
	if err = s.pool.QueryRow(ctx, qNextLeaseEnd).Scan(&b); err != nil {
		return runAt, leaseExpiry, fmt.Errorf("next lease expiry: %w", interpretError(err))
	}
	if a != nil {
		runAt = storage.FromMicros(*a)
	}
	if b != nil {
		leaseExpiry = storage.FromMicros(*b)
	}
	return runAt, leaseExpiry, nil
}

func scanJob(row pgx.Row) (*errand.Job, error) {
	j := &errand.Job{}
	var status string
	var result, jerr, progress, metadata, artifacts []byte
	var created, runAt int64
	var started, finished, leaseExp, expires *int64
	var idem *string
	err := row.Scan(&j.ID, &j.Tenant, &j.Owner, &j.Operation, &status, &j.Input, &result, &jerr, &progress,
		&j.Attempt, &j.MaxAttempts, &j.Priority, &j.TimeoutSeconds, &j.CancelRequested, &metadata,
		&j.CallbackURL, &created, &runAt, &started, &finished, &j.LeaseToken, &leaseExp, &j.Worker, &idem,
		&j.RequestHash, &expires, &artifacts)
	if err != nil {
		return nil, interpretError(err)
	}
	j.Status = errand.Status(status)
	if idem != nil {
		j.IdempotencyKey = *idem
	}
	j.CreatedAt, j.RunAt = storage.FromMicros(created), storage.FromMicros(runAt)
	j.StartedAt, j.FinishedAt = timePtr(started), timePtr(finished)
	j.LeaseExpiresAt, j.ExpiresAt = timePtr(leaseExp), timePtr(expires)
	if len(result) > 0 {
		j.Result = result
	}
	if err := storage.UnmarshalAll(jerr, &j.Error, progress, &j.Progress, metadata, &j.Metadata, artifacts, &j.Artifacts); err != nil {
		return nil, fmt.Errorf("job %s: %w", j.ID, err)
	}
	return j, nil
}

func queryJobs(rows pgx.Rows, err error) ([]*errand.Job, error) { return collect(rows, err, scanJob) }

// collect scans every row of a query with scan.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, interpretError(rows.Err())
}

// queryIDs reads a one-column result of ids.
func queryIDs(rows pgx.Rows, err error) ([]string, error) {
	return collect(rows, err, func(r pgx.Row) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
}

// where builds a WHERE clause with numbered parameters.
type where struct {
	conds []string
	args  []any
}

func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return fmt.Sprintf("$%d", len(w.args))
}

func (w *where) add(cond string, v any) { w.conds = append(w.conds, cond+w.arg(v)) }

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return "true"
	}
	out := w.conds[0]
	for _, c := range w.conds[1:] {
		out += " AND " + c
	}
	return out
}

func timePtr(n *int64) *time.Time {
	if n == nil {
		return nil
	}
	t := storage.FromMicros(*n)
	return &t
}
