package postgres

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/sqlrow"
	"github.com/jackc/pgx/v5"
)

// Job inserts, job updates and new events are the statements a batch (a lease
// of 200 jobs, a completion of 200, a group of submits) repeats per job. The
// transaction keeps them and sends each kind as one multi-row statement, all
// kinds in one round trip (large batches by COPY): before its next read (so it
// reads its own writes), and before it commits. A statement per row would cost
// a round trip per row.

// kept is a job write kept for the next flush: a copy of the job, its JSON
// columns encoded when it was written (so a value that does not encode fails
// its own call, at once, and a flush encodes nothing).
type kept struct {
	errand.Job
	json sqlrow.JobJSON
}

func keep(j *errand.Job) (*kept, error) {
	enc, err := sqlrow.EncodeJob(j)
	if err != nil {
		return nil, err
	}
	return &kept{Job: *j, json: enc}, nil
}

// deferUpdate keeps a copy of j's new state for the next flush (the call's
// latest wins; one kept by an earlier call of a group is sent first, so that
// a failing call can be dropped without touching it).
func (t *txn) deferUpdate(j *errand.Job) error {
	snap, err := keep(j)
	if err != nil {
		return fmt.Errorf("update job %s: %w", j.ID, err)
	}
	if t.locked != nil {
		if _, ok := t.locked[j.ID]; ok {
			c := snap.Job
			t.locked[j.ID] = &c
		}
	}
	if i, ok := t.updated[j.ID]; ok {
		if i >= t.call.updates {
			t.updates[i] = snap
			return nil
		}
		if err := t.flushBefore(); err != nil {
			return err
		}
	}
	if t.updated == nil {
		t.updated = map[string]int{}
	}
	t.updated[j.ID] = len(t.updates)
	t.updates = append(t.updates, snap)
	return nil
}

// flush sends the kept inserts, updates and events: as one pipeline of
// statements (one round trip), with COPY beside it for large batches.
func (t *txn) flush() error {
	if len(t.inserts) == 0 && len(t.updates) == 0 && len(t.events) == 0 {
		return nil
	}
	// Whatever happens below, nothing stays kept: the current call's writes,
	// if any were kept, are sent under its savepoint (see send).
	t.call.updates, t.call.events, t.call.inserts = 0, 0, 0
	p := &pipeline{}
	if n := len(t.inserts); n >= copyFrom {
		if err := t.copyJobs(); err != nil {
			return err
		}
	} else if n > 0 {
		t.queueInserts(p)
	}
	if len(t.updates) > 0 {
		t.queueUpdates(p)
	}
	evs := t.events
	t.events = t.events[:0]
	var seqs []int64
	if len(evs) > 0 {
		// The transaction's id first, as a statement of its own: a transaction
		// takes its id at its first write, and within one statement the seq of
		// the first row may be drawn before it (see tailer.inOrder).
		p.queue(func(br pgx.BatchResults) error {
			_, err := br.Exec()
			return wrap("transaction id", err)
		}, `SELECT pg_current_xact_id()`)
		if len(evs) >= copyFrom {
			p.queue(func(br pgx.BatchResults) (err error) {
				seqs, err = collectSeqs(br.Query())
				return wrap("event seqs", err)
			}, t.s.qSeqs, len(evs))
		} else {
			t.queueEvents(p, evs, &seqs)
		}
	}
	if t.committing {
		t.queueCommit(p)
	}
	if err := p.send(t); err != nil {
		return err
	}
	if len(evs) == 0 {
		return nil
	}
	if len(seqs) != len(evs) {
		return fmt.Errorf("event seqs: %d for %d events", len(seqs), len(evs))
	}
	// Seqs are drawn in the order the rows are given (one sequence, one
	// statement); rows returned need not come in that order, so they are sorted.
	slices.Sort(seqs)
	for i, e := range evs {
		e.Seq = seqs[i]
		t.maxSeq = max(t.maxSeq, e.Seq)
	}
	if len(evs) >= copyFrom {
		if err := t.copyEvents(evs); err != nil {
			return err
		}
	}
	if t.s.tail != nil {
		t.s.tail.keep(evs)
	}
	if t.s.cfg.Observer != nil {
		t.sent = append(t.sent, evs...)
	}
	return nil
}

// pipeline is statements sent together in one round trip; each has a check
// that reads its result, in order.
type pipeline struct {
	b      pgx.Batch
	checks []func(pgx.BatchResults) error
}

func (p *pipeline) queue(check func(pgx.BatchResults) error, q string, args ...any) {
	p.b.Queue(q, args...)
	p.checks = append(p.checks, check)
}

// send runs the statements and reports the first that failed.
func (p *pipeline) send(t *txn) error {
	if len(p.checks) == 0 {
		return nil
	}
	t.queueLead(p)
	br := t.conn.SendBatch(t.ctx, &p.b)
	var err error
	for _, check := range p.checks {
		if err = check(br); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("statements: %w", cerr)
	}
	return err
}

func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

const qInsertJobs = `INSERT INTO jobs (` + sqlrow.JobColumns + `) SELECT * FROM unnest($1::text[], $2::text[], $3::text[],
	$4::text[], $5::text[], $6::bytea[], $7::bytea[], $8::bytea[], $9::bytea[], $10::int[], $11::int[], $12::int[],
	$13::int[], $14::bool[], $15::bytea[], $16::text[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[],
	$21::text[], $22::bigint[], $23::text[], $24::text[], $25::text[], $26::bigint[], $27::bytea[], $28::text[], $29::text[],
	$30::text[], $31::text[])`

func (t *txn) queueInserts(p *pipeline) {
	n := len(t.inserts)
	id, tenant, owner, op, status, cb, token, worker, hash := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	input, result, jerr, progress, meta, arts := make([][]byte, n), make([][]byte, n), make([][]byte, n),
		make([][]byte, n), make([][]byte, n), make([][]byte, n)
	attempt, maxAttempts, prio, timeout := make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
	cancel := make([]bool, n)
	created, runAt := make([]int64, n), make([]int64, n)
	started, finished, leaseExp, expires := make([]*int64, n), make([]*int64, n), make([]*int64, n), make([]*int64, n)
	idem, trace, queueKey := make([]*string, n), make([]*string, n), make([]*string, n)
	ckey, fkey := make([]string, n), make([]string, n)
	for i, j := range t.inserts {
		ckey[i], fkey[i] = j.ConcurrencyKey, j.FairKey
		id[i], tenant[i], owner[i], op[i], status[i] = j.ID, j.Tenant, j.Owner, j.Operation, string(j.Status)
		cb[i], token[i], worker[i], hash[i] = j.CallbackURL, j.LeaseToken, j.Worker, j.RequestHash
		input[i] = []byte(j.Input)
		result[i], _ = storage.NullBytes(j.Result).([]byte)
		jerr[i], progress[i], meta[i], arts[i] = j.json.Error, j.json.Progress, j.json.Metadata, j.json.Artifacts
		attempt[i], maxAttempts[i], prio[i], timeout[i] = int32(j.Attempt), int32(j.MaxAttempts), int32(j.Priority), int32(j.TimeoutSeconds)
		cancel[i], created[i], runAt[i] = j.CancelRequested, storage.Micros(j.CreatedAt), storage.Micros(j.RunAt)
		started[i], finished[i], leaseExp[i], expires[i] = microsOf(j.StartedAt), microsOf(j.FinishedAt), microsOf(j.LeaseExpiresAt), microsOf(j.ExpiresAt)
		idem[i], trace[i], queueKey[i] = sqlrow.IdempotencyKey(&j.Job), sqlrow.TraceParent(&j.Job), sqlrow.QueueKey(&j.Job)
	}
	t.inserts = t.inserts[:0]
	p.queue(func(br pgx.BatchResults) error {
		_, err := br.Exec()
		return wrap("insert jobs", err)
	}, qInsertJobs, id, tenant, owner, op, status, input, result, jerr, progress, attempt,
		maxAttempts, prio, timeout, cancel, meta, cb, created, runAt, started, finished, token, leaseExp, worker,
		idem, hash, expires, arts, trace, queueKey, ckey, fkey)
}

const qUpdateJobs = `UPDATE jobs AS j SET status = v.status, result = v.result, error = v.error,
	progress = v.progress, attempt = v.attempt, max_attempts = v.max_attempts,
	cancel_requested = v.cancel_requested, run_at = v.run_at, started_at = v.started_at,
	finished_at = v.finished_at, lease_token = v.lease_token, lease_expires_at = v.lease_expires_at,
	worker = v.worker, expires_at = v.expires_at, artifacts = v.artifacts
	FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::bytea[], $6::int[], $7::int[],
		$8::bool[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::bigint[], $14::text[],
		$15::bigint[], $16::bytea[])
	AS v(id, status, result, error, progress, attempt, max_attempts, cancel_requested, run_at, started_at,
		finished_at, lease_token, lease_expires_at, worker, expires_at, artifacts)
	WHERE j.id = v.id`

func (t *txn) queueUpdates(p *pipeline) {
	n := len(t.updates)
	ids, status, token, worker := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	result, jerr, progress, artifacts := make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
	attempt, maxAttempts := make([]int32, n), make([]int32, n)
	cancel := make([]bool, n)
	runAt := make([]int64, n)
	started, finished, leaseExp, expires := make([]*int64, n), make([]*int64, n), make([]*int64, n), make([]*int64, n)
	for i, j := range t.updates {
		ids[i], status[i], token[i], worker[i] = j.ID, string(j.Status), j.LeaseToken, j.Worker
		result[i], _ = storage.NullBytes(j.Result).([]byte)
		jerr[i], progress[i], artifacts[i] = j.json.Error, j.json.Progress, j.json.Artifacts
		attempt[i], maxAttempts[i], cancel[i], runAt[i] = int32(j.Attempt), int32(j.MaxAttempts), j.CancelRequested, storage.Micros(j.RunAt)
		started[i], finished[i], leaseExp[i], expires[i] = microsOf(j.StartedAt), microsOf(j.FinishedAt), microsOf(j.LeaseExpiresAt), microsOf(j.ExpiresAt)
	}
	t.updates, t.updated = t.updates[:0], nil
	p.queue(func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err != nil {
			return fmt.Errorf("update jobs: %w", err)
		}
		if found := int(tag.RowsAffected()); found != n {
			return t.lose(found, n)
		}
		return nil
	}, qUpdateJobs, ids, status, result, jerr, progress, attempt, maxAttempts, cancel,
		runAt, started, finished, token, leaseExp, worker, expires, artifacts)
}

// errUpdateLost is what a statement of a group hears when the batch it sent
// held an update of a job that does not exist: not its verdict (the update
// may be another call's), so the call runs again alone, where the update's
// own call hears ErrNotFound.
var errUpdateLost = errors.New("update jobs: a job to update does not exist")

// lose records that a batch of n updates found only found rows. PostgreSQL
// refuses nothing (an UPDATE may match no row), so the transaction is marked
// (t.lost, see aborted) as if a statement had failed: a call that updated a
// missing job must not commit as if it had not.
func (t *txn) lose(found, n int) error {
	t.lost = fmt.Errorf("update jobs: %d of %d rows found: %w", found, n, storage.ErrNotFound)
	if t.group {
		return errUpdateLost
	}
	return t.lost
}

// copyJobs inserts the kept jobs by COPY.
func (t *txn) copyJobs() error {
	rows := make([][]any, len(t.inserts))
	for i, j := range t.inserts {
		rows[i] = []any{j.ID, j.Tenant, j.Owner, j.Operation, string(j.Status), []byte(j.Input),
			storage.NullBytes(j.Result), j.json.Error, j.json.Progress,
			int32(j.Attempt), int32(j.MaxAttempts), int32(j.Priority), int32(j.TimeoutSeconds), j.CancelRequested,
			j.json.Metadata, j.CallbackURL, storage.Micros(j.CreatedAt), storage.Micros(j.RunAt),
			microsOf(j.StartedAt), microsOf(j.FinishedAt), j.LeaseToken, microsOf(j.LeaseExpiresAt), j.Worker,
			sqlrow.IdempotencyKey(&j.Job), j.RequestHash, microsOf(j.ExpiresAt), j.json.Artifacts, sqlrow.TraceParent(&j.Job), sqlrow.QueueKey(&j.Job),
			j.ConcurrencyKey, j.FairKey}
	}
	t.inserts = t.inserts[:0]
	if err := t.sendWaiting(); err != nil {
		return err
	}
	if _, err := t.conn.CopyFrom(t.ctx, pgx.Identifier{"jobs"}, jobColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("insert jobs: %w", err)
	}
	return nil
}

// jobColumns and eventColumns are the job and event columns, one by one (for COPY).
var jobColumns, eventColumns = sqlrow.Columns(sqlrow.JobColumns), sqlrow.Columns(sqlrow.EventColumns)

// copyFrom is the batch size from which rows go by COPY rather than by one
// INSERT … SELECT FROM unnest: COPY skips the executor and writes the rows with
// one WAL record per page (heap_multi_insert); below it, the extra round trip
// COPY takes to describe the table costs more than it saves.
const copyFrom = 64

// queueEvents inserts small batches of events, their seqs drawn by the
// identity column and returned into seqs.
func (t *txn) queueEvents(p *pipeline, evs []*errand.Event, seqs *[]int64) {
	n := len(evs)
	stream, tenant, typ := make([]string, n), make([]string, n), make([]string, n)
	tm := make([]int64, n)
	data := make([][]byte, n)
	exp := make([]*int64, n)
	for i, e := range evs {
		stream[i], tenant[i], typ[i], tm[i], data[i], exp[i] = e.Stream, e.Tenant, e.Type, storage.Micros(e.Time), []byte(e.Data), microsOf(e.ExpiresAt)
	}
	p.queue(func(br pgx.BatchResults) (err error) {
		*seqs, err = collectSeqs(br.Query())
		return wrap("insert events", err)
	}, `INSERT INTO events (stream, tenant, type, time, data, expires_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bytea[], $6::bigint[]) RETURNING seq`,
		stream, tenant, typ, tm, data, exp)
}

// copyEvents inserts events (their seqs drawn already) by COPY.
func (t *txn) copyEvents(evs []*errand.Event) error {
	rows := make([][]any, len(evs))
	for i, e := range evs {
		rows[i] = []any{e.Seq, e.Stream, e.Tenant, e.Type, storage.Micros(e.Time), []byte(e.Data), microsOf(e.ExpiresAt)}
	}
	if err := t.sendWaiting(); err != nil {
		return err
	}
	_, err := t.conn.CopyFrom(t.ctx, pgx.Identifier{"events"}, eventColumns, pgx.CopyFromRows(rows))
	return wrap("insert events", err)
}

func collectSeqs(rows pgx.Rows, err error) ([]int64, error) {
	seqs, err := sqlrow.Collect(rows, err, func(r sqlrow.Row) (int64, error) {
		var n int64
		return n, r.Scan(&n)
	})
	return seqs, interpretError(err)
}

func microsOf(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	us := t.UnixMicro()
	return &us
}

// query and queryRow send a read after the kept writes (conn.Exec and
// ExecRow send writes, in a group under the call's savepoint: see send).
func (t *txn) query(q string, args ...any) (pgx.Rows, error) {
	if err := t.send(false); err != nil {
		return nil, err
	}
	return t.rows(q, args...)
}

func (t *txn) queryRow(q string, args ...any) pgx.Row {
	if err := t.send(false); err != nil {
		return sqlrow.ErrRow{Err: err}
	}
	return t.row(q, args...)
}
