package postgres

import (
	"context"
	"fmt"
	"math"
	"strings"
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
	qCountRunning   = `SELECT count(*) FROM jobs WHERE status = 'running' AND operation = $1`
	qExpiredLeases  = `SELECT ` + jobCols + ` FROM jobs WHERE status = 'running' AND lease_expires_at < $1
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
	// qListEvents reads up to $5 events of a stream after $3 and up to $4, cut
	// where the events before hold $6 bytes of data, by sizes read from the rows'
	// headers: events past the budget are never fetched.
	qListEvents = `WITH p AS (SELECT seq, octet_length(data) AS size FROM events WHERE stream = $1 AND tenant = $2
		AND seq > $3 AND seq <= $4 ORDER BY seq LIMIT $5),
		r AS (SELECT seq, sum(size) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) - size AS bytes_before FROM p)
		SELECT ` + eventCols + ` FROM events JOIN r USING (seq) WHERE r.bytes_before < $6 ORDER BY seq`
)

// qQueuedJobs (every tenant's) and qQueuedTenantJobs lock up to $2 queued
// jobs and return those that fit in $3 bytes: the sizes come from the rows'
// headers (octet_length reads no TOAST), so jobs past the budget are never
// fetched. The rows locked but not taken stay queued (the queue wakes waiting
// workers for them after commit).
var (
	qQueuedJobs       = queuedJobsSQL(`$4 = ''`)
	qQueuedTenantJobs = queuedJobsSQL(`tenant = $4`)
)

// queuedJobsSQL is the claim of queued jobs of operation $1, at most $2 of them
// and $3 bytes, among the rows that also match cond (on $4, the tenant).
func queuedJobsSQL(cond string) string {
	return `WITH c AS (SELECT id, priority, run_at, octet_length(input) + coalesce(octet_length(result), 0) AS size FROM jobs
		WHERE status = 'queued' AND operation = $1 AND ` + cond + ` ORDER BY priority DESC, run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED),
		r AS (SELECT id, sum(size) OVER (ORDER BY priority DESC, run_at, id ROWS UNBOUNDED PRECEDING) - size AS bytes_before FROM c)
		SELECT ` + jobCols + ` FROM jobs JOIN r USING (id) WHERE r.bytes_before < $3 ORDER BY priority DESC, run_at, id`
}

// txn is the storage.Tx of one transaction.
type txn struct {
	s      *Store
	tx     pgx.Tx
	ctx    context.Context // the transaction's own: a caller's cancel never interrupts it
	c      storage.Commit
	maxSeq int64
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

func (t *txn) GetJob(_ context.Context, id string) (*errand.Job, error) {
	if j, ok := t.locked[id]; ok {
		c := *j // the caller changes it; the kept state must not move with it
		return &c, nil
	}
	return scanJob(t.queryRow(qGetJob, id))
}

// LockJobs reads and locks the jobs in one statement; GetJob then answers from them.
func (t *txn) LockJobs(_ context.Context, ids []string) error {
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

func (t *txn) FindIdempotent(_ context.Context, tenant, owner, key string) (*errand.Job, error) {
	return scanJob(t.queryRow(qFindIdempotent, tenant, owner, key))
}

// InsertJob keeps a copy of j for the transaction's next statement batch.
func (t *txn) InsertJob(_ context.Context, j *errand.Job) error {
	c := *j
	t.inserts = append(t.inserts, &c)
	return nil
}

// UpdateJob keeps j's new state; it is written with the transaction's next
// statement batch (see batch.go). Callers update only jobs they read in the
// same transaction, so the row exists.
func (t *txn) UpdateJob(_ context.Context, j *errand.Job) error {
	return t.deferUpdate(j)
}

func (t *txn) DeleteJob(_ context.Context, id string) error {
	if _, err := t.exec("delete events", qDeleteEvents, id); err != nil {
		return err
	}
	_, err := t.exec("delete job", qDeleteJob, id)
	delete(t.locked, id)
	return err
}

// InsertEvent keeps e for the transaction's next statement batch (batch.go),
// which sets e.Seq before the commit.
func (t *txn) InsertEvent(ctx context.Context, e *errand.Event) error {
	t.events = append(t.events, e)
	return t.s.hooks.EventAppended(ctx, t, e)
}

func (t *txn) QueuedJobs(_ context.Context, tenant, operation string, limit int, maxBytes int64) ([]*errand.Job, error) {
	q := qQueuedJobs
	if tenant != "" {
		q = qQueuedTenantJobs
	}
	return queryJobs(t.query(q, operation, limit, storage.ByteBudget(maxBytes), tenant))
}

// CountRunning counts an operation's running jobs. It first takes a lock on the
// operation for the rest of the transaction, so two nodes leasing it at once
// cannot both see room under its concurrency limit.
func (t *txn) CountRunning(_ context.Context, operation string) (int, error) {
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

func (t *txn) ExpiredLeases(_ context.Context, now time.Time, limit int) ([]*errand.Job, error) {
	return queryJobs(t.query(qExpiredLeases, storage.Micros(now), limit))
}

func (t *txn) DueScheduled(_ context.Context, now time.Time, limit int) ([]*errand.Job, error) {
	return queryJobs(t.query(qDueScheduled, storage.Micros(now), limit))
}

func (t *txn) ExpiredJobs(_ context.Context, now time.Time, limit int) ([]string, error) {
	return queryIDs(t.query(qExpiredJobs, storage.Micros(now), limit))
}

func (t *txn) ExpireEvents(_ context.Context, now time.Time, limit int) (int, error) {
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

// ListJobs reads committed jobs newest first. The page is cut at MaxBytes by
// sizes read from the rows' headers (octet_length reads no TOAST): jobs past
// the budget are never fetched.
func (s *Store) ListJobs(ctx context.Context, p storage.ListJobsParams) ([]*errand.Job, error) {
	w := &where{}
	page := listJobsPage(w, p)
	q := `WITH p AS (` + page + `),
		r AS (SELECT id, sum(size) OVER (ORDER BY id DESC ROWS UNBOUNDED PRECEDING) - size AS bytes_before FROM p)
		SELECT ` + jobCols + ` FROM jobs JOIN r USING (id) WHERE r.bytes_before < ` + w.arg(storage.ByteBudget(p.MaxBytes)) +
		` ORDER BY id DESC`
	return queryJobs(s.pool.Query(ctx, q, w.args...))
}

// listJobsPage selects the ids and sizes of a page. With an owner it walks the
// (tenant, owner, id) index newest first; with a legacy owner as well, each
// owner's walk is limited on its own and the two are merged, because
// owner = ANY(…) would not come out of the index in id order.
func listJobsPage(w *where, p storage.ListJobsParams) string {
	owners := []string{p.Owner}
	if p.LegacyOwner != "" && p.LegacyOwner != p.Owner {
		owners = append(owners, p.LegacyOwner)
	}
	var arms []string
	for _, o := range owners {
		arms = append(arms, `(SELECT id, octet_length(input) + coalesce(octet_length(result), 0) AS size FROM jobs WHERE `+
			listJobsWhere(w, p, o)+` ORDER BY id DESC LIMIT `+w.arg(p.Limit)+`)`)
	}
	if len(arms) == 1 {
		return arms[0]
	}
	return `SELECT * FROM (` + strings.Join(arms, ` UNION ALL `) + `) u ORDER BY id DESC LIMIT ` + w.arg(p.Limit)
}

// listJobsWhere is ListJobs' filter for one owner ("" for every owner's).
func listJobsWhere(w *where, p storage.ListJobsParams, owner string) string {
	c := &where{args: w.args}
	c.add("tenant = ", p.Tenant)
	if p.Before != "" {
		c.add("id < ", p.Before)
	}
	if owner != "" {
		c.add("owner = ", owner)
	}
	if p.Operation != "" {
		c.add("operation = ", p.Operation)
	}
	if p.Status != "" {
		c.add("status = ", string(p.Status))
	}
	w.args = c.args
	return c.sql()
}

// ListEvents reads a stream's committed events. A page never reaches past this
// node's horizon (a lower seq might still commit); when committed events lie
// beyond it, such as the caller's own just now, it waits for the tailer to pass
// them, so a transaction that returned is always seen.
func (s *Store) ListEvents(ctx context.Context, p storage.ListEventsParams) ([]*errand.Event, error) {
	// The horizon is read before the events: every seq up to it had committed
	// (and so is in this read) or never will.
	h := s.tail.horizon()
	budget := storage.ByteBudget(p.MaxBytes)
	rows, err := s.pool.Query(ctx, qListEvents, p.Stream, p.Tenant, p.After, int64(math.MaxInt64), p.Limit, budget)
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
	rows, err = s.pool.Query(ctx, qListEvents, p.Stream, p.Tenant, p.After, h, p.Limit, budget)
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

// LogHead reads the highest seq handed out: the events' sequence (taken by
// inserts on every node, committed or not) or the highest stored, if higher.
func (s *Store) LogHead(ctx context.Context) (int64, error) {
	var head int64
	err := s.pool.QueryRow(ctx, s.qHead).Scan(&head)
	return head, interpretError(err)
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
