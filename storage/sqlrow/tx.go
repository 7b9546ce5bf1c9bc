package sqlrow

import (
	"fmt"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// Conn runs a driver's statements inside its transaction, under the
// driver's own context (see the storage package on contexts). Errors come
// back as the database library gave them; Tx maps them (Interpret) where the
// seam's answer depends on them.
type Conn interface {
	// Exec runs a statement that changes rows and returns how many it changed.
	Exec(q string, args ...any) (int64, error)
	// ExecRow runs a statement that changes rows and returns one (RETURNING).
	ExecRow(q string, args ...any) Row
	// Query runs a statement that reads rows.
	Query(q string, args ...any) (Rows, error)
	// QueryRow runs a statement that reads at most one row.
	QueryRow(q string, args ...any) Row
}

// Tx is the part of storage.Tx whose SQL is the same in both dialects. A
// driver's transaction embeds it and overrides what it does its own way.
type Tx struct {
	Conn    Conn
	Q       *Queries
	Dialect Dialect
	// Commit is what the transaction (or the call, in a group) reports.
	Commit *storage.Commit
	// Interpret is the driver's error translation (no rows: ErrNotFound).
	Interpret func(error) error
	// Hooks run after InsertEvent, given Self (the driver's Tx).
	Hooks *storage.Hooks
	Self  storage.Tx
}

// GetJob reads and (where rows lock) locks a job of any tenant.
func (t *Tx) GetJob(id string) (*errand.Job, error) {
	j, err := ScanJob(t.Conn.QueryRow(t.Q.GetJob, id))
	return j, t.Interpret(err)
}

// LockJobs does nothing: a driver that pays a round trip per statement
// overrides it.
func (t *Tx) LockJobs([]string) error { return nil }

// JobByIdempotencyKey reads the job tenant/owner submitted with key.
func (t *Tx) JobByIdempotencyKey(tenant, owner, key string) (*errand.Job, error) {
	j, err := ScanJob(t.Conn.QueryRow(t.Q.JobByIdempotencyKey, tenant, owner, key))
	return j, t.Interpret(err)
}

// InsertJob writes a new job.
func (t *Tx) InsertJob(j *errand.Job) error {
	args, err := JobInsertArgs(j)
	if err != nil {
		return fmt.Errorf("insert job %s: %w", j.ID, err)
	}
	return t.exec("insert job", t.Q.InsertJob, args...)
}

// UpdateJob writes a job's mutable fields.
func (t *Tx) UpdateJob(j *errand.Job) error {
	args, err := JobUpdateArgs(j)
	if err != nil {
		return fmt.Errorf("update job %s: %w", j.ID, err)
	}
	return t.execOne("update job", t.Q.UpdateJob, args...)
}

// DeleteJob removes a job, its events and the unique key it held (in one
// statement where DML may sit in a WITH: PostgreSQL pays a round trip each).
func (t *Tx) DeleteJob(id string) error {
	if t.Dialect.numbered {
		if err := t.exec("delete events", t.Dialect.flow().DeleteEventsUnique, id); err != nil {
			return err
		}
	} else {
		if err := t.exec("delete events", t.Q.DeleteEvents, id); err != nil {
			return err
		}
		if err := t.exec("delete unique key", t.Dialect.flow().DeleteUnique, id); err != nil {
			return err
		}
	}
	return t.execOne("delete job", t.Q.DeleteJob, id)
}

// InsertEvent appends e, sets its seq, and runs the hooks.
func (t *Tx) InsertEvent(e *errand.Event) error {
	if err := t.Conn.ExecRow(t.Q.InsertEvent, EventArgs(e)...).Scan(&e.Seq); err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	t.Commit.Events = append(t.Commit.Events, e)
	return t.Hooks.EventAppended(t.Self, e)
}

// QueuedJobs claims queued jobs of operation, in run order, as many as limit
// and maxBytes allow.
func (t *Tx) QueuedJobs(tenant, operation string, limit int, maxBytes int64) ([]*errand.Job, error) {
	q, args := t.Q.QueuedJobs, []any{operation, limit}
	if tenant != "" {
		q, args = t.Q.QueuedTenantJobs, []any{tenant, operation, limit}
	}
	rows, err := t.Conn.Query(q, t.Dialect.budget(args, maxBytes)...)
	js, err := CollectBytes(rows, err, maxBytes, ScanJob, (*errand.Job).Bytes)
	return js, t.Interpret(err)
}

// CountRunning counts an operation's running jobs.
func (t *Tx) CountRunning(operation string) (int, error) {
	var n int
	err := t.Conn.QueryRow(t.Q.CountRunning, operation).Scan(&n)
	return n, t.Interpret(err)
}

// ExpiredLeases claims running jobs whose lease ended before now.
func (t *Tx) ExpiredLeases(now time.Time, limit int) ([]*errand.Job, error) {
	return t.jobs(t.Q.ExpiredLeases, storage.Micros(now), limit)
}

// DueScheduled claims scheduled jobs due at now.
func (t *Tx) DueScheduled(now time.Time, limit int) ([]*errand.Job, error) {
	return t.jobs(t.Q.DueScheduled, storage.Micros(now), limit)
}

// ExpiredJobs claims the ids of jobs whose retention ended before now.
func (t *Tx) ExpiredJobs(now time.Time, limit int) ([]string, error) {
	rows, err := t.Conn.Query(t.Q.ExpiredJobs, storage.Micros(now), limit)
	ids, err := Collect(rows, err, ScanID)
	return ids, t.Interpret(err)
}

// expired is an event ExpireEvents deletes.
type expired struct {
	seq            int64
	tenant, stream string
}

// ExpireEvents deletes events past their expires_at and raises their
// streams' floors.
func (t *Tx) ExpireEvents(now time.Time, limit int) (int, error) {
	rows, err := t.Conn.Query(t.Q.ExpiredEvents, storage.Micros(now), limit)
	evs, err := Collect(rows, err, func(r Row) (expired, error) {
		var e expired
		return e, r.Scan(&e.seq, &e.tenant, &e.stream)
	})
	if err != nil {
		return 0, fmt.Errorf("expired events: %w", t.Interpret(err))
	}
	type stream struct{ tenant, name string }
	floors := map[stream]int64{}
	for _, e := range evs {
		if err := t.exec("delete event", t.Q.DeleteEvent, e.seq); err != nil {
			return 0, err
		}
		k := stream{e.tenant, e.stream}
		floors[k] = max(floors[k], e.seq)
	}
	for k, f := range floors {
		if err := t.exec("raise stream floor", t.Q.RaiseFloor, k.tenant, k.name, f); err != nil {
			return 0, err
		}
	}
	return len(evs), nil
}

// JobsReady records that operation gained queued jobs.
func (t *Tx) JobsReady(operation string) { t.Commit.Add(&storage.Commit{Ready: []string{operation}}) }

// JobsScheduled records that a job became scheduled at runAt.
func (t *Tx) JobsScheduled(runAt time.Time) { t.Commit.Add(&storage.Commit{Scheduled: runAt}) }

// GetSetting reads (and where rows lock, locks) a setting.
func (t *Tx) GetSetting(key string) (string, error) {
	var v string
	err := t.Conn.QueryRow(t.Q.GetSetting, key).Scan(&v)
	return v, t.Interpret(err)
}

// PutSetting stores a setting, replacing any.
func (t *Tx) PutSetting(key, value string) error {
	return t.exec("put setting", t.Q.PutSetting, key, value)
}

// jobs claims or reads the jobs of a query.
func (t *Tx) jobs(q string, args ...any) ([]*errand.Job, error) {
	rows, err := t.Conn.Query(q, args...)
	js, err := Collect(rows, err, ScanJob)
	return js, t.Interpret(err)
}

// exec runs a write, wrapping its error with what it was.
func (t *Tx) exec(what, q string, args ...any) error {
	if _, err := t.Conn.Exec(q, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// execOne runs a write of one row: none changed is ErrNotFound.
func (t *Tx) execOne(what, q string, args ...any) error {
	n, err := t.Conn.Exec(q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// changed records shared state this transaction changes (storage.Commit.Changed).
func (t *Tx) changed(what string) { t.Commit.Add(&storage.Commit{Changed: []string{what}}) }

// ErrRow is a Row whose Scan fails with err: a driver's QueryRow that could
// not send its statement.
type ErrRow struct{ Err error }

// Scan returns the error.
func (r ErrRow) Scan(...any) error { return r.Err }
