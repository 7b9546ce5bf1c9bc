package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// jobCols is the column list every job query reads, in scanJob's order.
const jobCols = `id, tenant, owner, operation, status, input, result, error, progress, attempt,
	max_attempts, priority, timeout_seconds, cancel_requested, metadata, callback_url, created_at,
	run_at, started_at, finished_at, lease_token, lease_expires_at, worker, idempotency_key,
	request_hash, expires_at, artifacts`

// The queries, named as in the PostgreSQL driver.
const (
	qInsertJob = `INSERT INTO jobs (` + jobCols + `) VALUES
		(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qUpdateJob = `UPDATE jobs SET status = ?, result = ?, error = ?, progress = ?, attempt = ?,
		max_attempts = ?, cancel_requested = ?, run_at = ?, started_at = ?, finished_at = ?,
		lease_token = ?, lease_expires_at = ?, worker = ?, expires_at = ?, artifacts = ? WHERE id = ?`
	qGetJob         = `SELECT ` + jobCols + ` FROM jobs WHERE id = ?`
	qGetTenantJob   = `SELECT ` + jobCols + ` FROM jobs WHERE id = ? AND tenant = ?`
	qFindIdempotent = `SELECT ` + jobCols + ` FROM jobs WHERE tenant = ? AND owner = ? AND idempotency_key = ?`
	qDeleteJob      = `DELETE FROM jobs WHERE id = ?`
	qDeleteEvents   = `DELETE FROM events WHERE stream = ?`
	qInsertEvent    = `INSERT INTO events (stream, tenant, type, time, data, expires_at) VALUES (?, ?, ?, ?, ?, ?)`
	qQueuedJobs     = `SELECT ` + jobCols + ` FROM jobs WHERE status = 'queued' AND operation = ?
		ORDER BY priority DESC, run_at, id LIMIT ?`
	qQueuedTenantJobs = `SELECT ` + jobCols + ` FROM jobs WHERE status = 'queued' AND tenant = ? AND operation = ?
		ORDER BY priority DESC, run_at, id LIMIT ?`
	qCountRunning  = `SELECT count(*) FROM jobs WHERE status = 'running' AND operation = ?`
	qExpiredLeases = `SELECT ` + jobCols + ` FROM jobs WHERE status = 'running' AND lease_expires_at < ?
		ORDER BY lease_expires_at LIMIT ?`
	qDueScheduled = `SELECT ` + jobCols + ` FROM jobs WHERE status = 'scheduled' AND run_at <= ?
		ORDER BY run_at LIMIT ?`
	qExpiredJobs   = `SELECT id FROM jobs WHERE expires_at IS NOT NULL AND expires_at < ? ORDER BY expires_at LIMIT ?`
	qStreamFloor   = `SELECT floor FROM stream_floors WHERE tenant = ? AND stream = ?`
	qExpiredEvents = `SELECT seq, tenant, stream FROM events WHERE expires_at IS NOT NULL AND expires_at < ? ORDER BY expires_at LIMIT ?`
	qDeleteEvent   = `DELETE FROM events WHERE seq = ?`
	qRaiseFloor    = `INSERT INTO stream_floors (tenant, stream, floor) VALUES (?, ?, ?)
		ON CONFLICT (tenant, stream) DO UPDATE SET floor = max(floor, excluded.floor)`
	qGetSetting    = `SELECT value FROM settings WHERE key = ?`
	qPutSetting    = `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`
	qNextScheduled = `SELECT min(run_at) FROM jobs WHERE status = 'scheduled'`
	qNextLeaseEnd  = `SELECT min(lease_expires_at) FROM jobs WHERE status = 'running'`
	qListEvents    = `SELECT seq, stream, tenant, type, time, data FROM events WHERE stream = ? AND tenant = ? AND seq > ? ORDER BY seq LIMIT ?`
)

// writeStmts are prepared once on the writer's connection.
type writeStmts struct {
	insertJob, updateJob, getJob, findIdempotent, deleteJob, deleteEvents, insertEvent,
	queuedJobs, queuedTenantJobs, countRunning, expiredLeases, dueScheduled, expiredJobs *sql.Stmt
	insertDelivery, updateDelivery, insertAttempt *sql.Stmt
	// The group commit's own statements, prepared once: parsing them for every
	// caller cost a tenth of the server's CPU under load.
	begin, commit, rollback, savepoint, release, rollbackTo *sql.Stmt
}

func (s *writeStmts) prepare(ctx context.Context, c *sql.Conn) error {
	return prepareAll(ctx, c.PrepareContext, map[**sql.Stmt]string{
		&s.insertJob: qInsertJob, &s.updateJob: qUpdateJob, &s.getJob: qGetJob,
		&s.findIdempotent: qFindIdempotent, &s.deleteJob: qDeleteJob, &s.deleteEvents: qDeleteEvents,
		&s.insertEvent: qInsertEvent, &s.queuedJobs: qQueuedJobs, &s.countRunning: qCountRunning,
		&s.queuedTenantJobs: qQueuedTenantJobs, &s.expiredLeases: qExpiredLeases, &s.dueScheduled: qDueScheduled, &s.expiredJobs: qExpiredJobs,
		&s.insertDelivery: qInsertDelivery, &s.updateDelivery: qUpdateDelivery, &s.insertAttempt: qInsertAttempt,
		&s.begin: "BEGIN IMMEDIATE", &s.commit: "COMMIT", &s.rollback: "ROLLBACK",
		&s.savepoint: "SAVEPOINT r", &s.release: "RELEASE r", &s.rollbackTo: "ROLLBACK TO r",
	})
}

func (s *writeStmts) close() {
	closeAll(s.insertJob, s.updateJob, s.getJob, s.findIdempotent, s.deleteJob, s.deleteEvents,
		s.insertEvent, s.queuedJobs, s.queuedTenantJobs, s.countRunning, s.expiredLeases, s.dueScheduled, s.expiredJobs,
		s.insertDelivery, s.updateDelivery, s.insertAttempt,
		s.begin, s.commit, s.rollback, s.savepoint, s.release, s.rollbackTo)
}

// readStmts are prepared on the read pool.
type readStmts struct {
	getTenantJob, listEvents, nextScheduled, nextLeaseEnd *sql.Stmt
}

func (s *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	return prepareAll(ctx, db.PrepareContext, map[**sql.Stmt]string{
		&s.getTenantJob: qGetTenantJob, &s.listEvents: qListEvents,
		&s.nextScheduled: qNextScheduled, &s.nextLeaseEnd: qNextLeaseEnd,
	})
}

func (s *readStmts) close() { closeAll(s.getTenantJob, s.listEvents, s.nextScheduled, s.nextLeaseEnd) }

func prepareAll(ctx context.Context, prep func(context.Context, string) (*sql.Stmt, error), qs map[**sql.Stmt]string) error {
	for dst, q := range qs {
		st, err := prep(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", strings.Join(strings.Fields(q)[:min(3, len(strings.Fields(q)))], " "), err)
		}
		*dst = st
	}
	return nil
}

func closeAll(stmts ...*sql.Stmt) {
	for _, st := range stmts {
		if st != nil {
			st.Close()
		}
	}
}

// txn is the storage.Tx of one request inside a group commit.
type txn struct {
	w *writer
	c storage.Commit
}

var _ storage.Tx = (*txn)(nil)

func (t *txn) reset() { t.c = storage.Commit{} }

// Every statement runs under the writer's context, never the caller's: an interrupted
// statement could roll back the whole shared transaction.

func (t *txn) GetJob(id string) (*errand.Job, error) {
	return scanJob(t.w.stmts.getJob.QueryRowContext(t.w.ctx, id))
}

// LockJobs does nothing: the single writer already holds every row, and a
// statement costs no round trip.
func (t *txn) LockJobs([]string) error { return nil }

func (t *txn) JobByIdempotencyKey(tenant, owner, key string) (*errand.Job, error) {
	return scanJob(t.w.stmts.findIdempotent.QueryRowContext(t.w.ctx, tenant, owner, key))
}

func (t *txn) InsertJob(j *errand.Job) error {
	_, err := t.w.stmts.insertJob.ExecContext(t.w.ctx, j.ID, j.Tenant, j.Owner, j.Operation, string(j.Status),
		[]byte(j.Input), storage.NullBytes(j.Result), storage.JSONOrNil(j.Error), storage.JSONOrNil(j.Progress), j.Attempt,
		j.MaxAttempts, j.Priority, j.TimeoutSeconds, j.CancelRequested, storage.JSONOrNil(j.Metadata), j.CallbackURL,
		storage.Micros(j.CreatedAt), storage.Micros(j.RunAt), storage.MicrosPtr(j.StartedAt), storage.MicrosPtr(j.FinishedAt), j.LeaseToken,
		storage.MicrosPtr(j.LeaseExpiresAt), j.Worker, storage.NullString(j.IdempotencyKey), j.RequestHash, storage.MicrosPtr(j.ExpiresAt),
		storage.JSONOrNil(j.Artifacts))
	if err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	return nil
}

func (t *txn) UpdateJob(j *errand.Job) error {
	res, err := t.w.stmts.updateJob.ExecContext(t.w.ctx, string(j.Status), storage.NullBytes(j.Result), storage.JSONOrNil(j.Error),
		storage.JSONOrNil(j.Progress), j.Attempt, j.MaxAttempts, j.CancelRequested, storage.Micros(j.RunAt), storage.MicrosPtr(j.StartedAt),
		storage.MicrosPtr(j.FinishedAt), j.LeaseToken, storage.MicrosPtr(j.LeaseExpiresAt), j.Worker, storage.MicrosPtr(j.ExpiresAt),
		storage.JSONOrNil(j.Artifacts), j.ID)
	if err != nil {
		return fmt.Errorf("update job: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

func (t *txn) DeleteJob(id string) error {
	if _, err := t.w.stmts.deleteEvents.ExecContext(t.w.ctx, id); err != nil {
		return fmt.Errorf("delete events: %w", err)
	}
	res, err := t.w.stmts.deleteJob.ExecContext(t.w.ctx, id)
	return affected(res, err, "delete job")
}

func (t *txn) InsertEvent(e *errand.Event) error {
	res, err := t.w.stmts.insertEvent.ExecContext(t.w.ctx, e.Stream, e.Tenant, e.Type, storage.Micros(e.Time), []byte(e.Data), storage.MicrosPtr(e.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	if e.Seq, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("event sequence: %w", err)
	}
	t.c.Events = append(t.c.Events, e)
	return t.w.store.hooks.EventAppended(t, e)
}

func (t *txn) QueuedJobs(tenant, operation string, limit int) ([]*errand.Job, error) {
	if tenant != "" {
		return queryJobs(t.w.stmts.queuedTenantJobs.QueryContext(t.w.ctx, tenant, operation, limit))
	}
	return queryJobs(t.w.stmts.queuedJobs.QueryContext(t.w.ctx, operation, limit))
}

func (t *txn) CountRunning(operation string) (int, error) {
	var n int
	err := t.w.stmts.countRunning.QueryRowContext(t.w.ctx, operation).Scan(&n)
	return n, err
}

func (t *txn) ExpiredLeases(now time.Time, limit int) ([]*errand.Job, error) {
	return queryJobs(t.w.stmts.expiredLeases.QueryContext(t.w.ctx, storage.Micros(now), limit))
}

func (t *txn) DueScheduled(now time.Time, limit int) ([]*errand.Job, error) {
	return queryJobs(t.w.stmts.dueScheduled.QueryContext(t.w.ctx, storage.Micros(now), limit))
}

func (t *txn) ExpiredJobs(now time.Time, limit int) ([]string, error) {
	return queryIDs(t.w.stmts.expiredJobs.QueryContext(t.w.ctx, storage.Micros(now), limit))
}

// queryIDs reads a one-column result of ids.
func queryIDs(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (t *txn) ExpireEvents(now time.Time, limit int) (int, error) {
	rows, err := t.w.conn.QueryContext(t.w.ctx, qExpiredEvents, storage.Micros(now), limit)
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
		if _, err := t.w.conn.ExecContext(t.w.ctx, qDeleteEvent, seq); err != nil {
			return 0, fmt.Errorf("delete event: %w", err)
		}
	}
	for k, f := range floors {
		if _, err := t.w.conn.ExecContext(t.w.ctx, qRaiseFloor, k.tenant, k.stream, f); err != nil {
			return 0, fmt.Errorf("raise stream floor: %w", err)
		}
	}
	return len(seqs), nil
}

func (t *txn) JobsReady(operation string) { t.c.Add(&storage.Commit{Ready: []string{operation}}) }

func (t *txn) JobsScheduled(runAt time.Time) { t.c.Add(&storage.Commit{Scheduled: runAt}) }

// GetJob reads a committed job.
func (s *Store) GetJob(ctx context.Context, tenant, id string) (*errand.Job, error) {
	return scanJob(s.read.getTenantJob.QueryRowContext(ctx, id, tenant))
}

// ListJobs reads committed jobs newest first.
func (s *Store) ListJobs(ctx context.Context, p storage.ListJobsParams) ([]*errand.Job, error) {
	q := `SELECT ` + jobCols + ` FROM jobs WHERE tenant = ?`
	args := []any{p.Tenant}
	if p.Before != "" {
		q += ` AND id < ?`
		args = append(args, p.Before)
	}
	if p.Owner != "" {
		q += ` AND owner IN (?, ?)`
		args = append(args, p.Owner, cmp.Or(p.LegacyOwner, p.Owner))
	}
	if p.Operation != "" {
		q += ` AND operation = ?`
		args = append(args, p.Operation)
	}
	if p.Status != "" {
		q += ` AND status = ?`
		args = append(args, string(p.Status))
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, p.Limit)
	return queryJobs(s.rdb.QueryContext(ctx, q, args...))
}

// ListEvents reads a stream's committed events.
func (s *Store) ListEvents(ctx context.Context, p storage.ListEventsParams) ([]*errand.Event, error) {
	rows, err := s.read.listEvents.QueryContext(ctx, p.Stream, p.Tenant, p.After, p.Limit)
	out, err := collect(rows, err, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

func scanEvent(row rowScanner) (*errand.Event, error) {
	e := &errand.Event{}
	var t int64
	var data []byte
	err := row.Scan(&e.Seq, &e.Stream, &e.Tenant, &e.Type, &t, &data)
	e.Time, e.Data = storage.FromMicros(t), data
	return e, err
}

// StreamFloor reads the highest cursor retention deleted from a stream.
func (s *Store) StreamFloor(ctx context.Context, tenant, stream string) (int64, error) {
	var f int64
	err := s.rdb.QueryRowContext(ctx, qStreamFloor, tenant, stream).Scan(&f)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return f, err
}

// NextWakeup reads when the scheduler and the lease reaper next have work.
func (s *Store) NextWakeup(ctx context.Context) (runAt, leaseExpiry time.Time, err error) {
	var a, b sql.NullInt64
	if err = s.read.nextScheduled.QueryRowContext(ctx).Scan(&a); err != nil {
		return runAt, leaseExpiry, fmt.Errorf("next scheduled: %w", err)
	}
	if err = s.read.nextLeaseEnd.QueryRowContext(ctx).Scan(&b); err != nil {
		return runAt, leaseExpiry, fmt.Errorf("next lease expiry: %w", err)
	}
	if a.Valid {
		runAt = storage.FromMicros(a.Int64)
	}
	if b.Valid {
		leaseExpiry = storage.FromMicros(b.Int64)
	}
	return runAt, leaseExpiry, nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanJob(row rowScanner) (*errand.Job, error) {
	j := &errand.Job{}
	var status string
	var result, jerr, progress, metadata, artifacts []byte
	var created, runAt int64
	var started, finished, leaseExp, expires sql.NullInt64
	var idem sql.NullString
	err := row.Scan(&j.ID, &j.Tenant, &j.Owner, &j.Operation, &status, &j.Input, &result, &jerr, &progress,
		&j.Attempt, &j.MaxAttempts, &j.Priority, &j.TimeoutSeconds, &j.CancelRequested, &metadata,
		&j.CallbackURL, &created, &runAt, &started, &finished, &j.LeaseToken, &leaseExp, &j.Worker, &idem,
		&j.RequestHash, &expires, &artifacts)
	if err != nil {
		return nil, interpretError(err)
	}
	j.Status, j.IdempotencyKey = errand.Status(status), idem.String
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

func queryJobs(rows *sql.Rows, err error) ([]*errand.Job, error) { return collect(rows, err, scanJob) }

// collect scans every row of a query with scan.
func collect[T any](rows *sql.Rows, err error, scan func(rowScanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
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
	return out, rows.Err()
}

func timePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := storage.FromMicros(n.Int64)
	return &t
}

// Setting returns the stored value of key, storing value first if there is none.
func (s *Store) Setting(ctx context.Context, key, value string) (string, error) {
	var out string
	err := s.w.do(ctx, func(storage.Tx) error {
		if _, err := s.w.conn.ExecContext(s.w.ctx, qPutSetting, key, value); err != nil {
			return fmt.Errorf("store setting %s: %w", key, err)
		}
		return s.w.conn.QueryRowContext(s.w.ctx, qGetSetting, key).Scan(&out)
	})
	return out, err
}
