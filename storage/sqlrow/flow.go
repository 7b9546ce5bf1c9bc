package sqlrow

import (
	"context"
	"reflect"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// The admission part of storage.Reader and storage.Tx (flow control, #15):
// queue depths and positions, and unique jobs. Rate-limit buckets are each
// driver's own (SQLite keeps them in the process, PostgreSQL in an unlogged
// table).

// FlowQueries are admission's statements, named as the methods that run them.
type FlowQueries struct {
	CountQueued, CountQueuedKey, QueueDepth, QueueAhead, Started string
	UniqueJob, InsertUniqueJob, UpdateUniqueJob                  string
	// DeleteUnique (SQLite) and DeleteEventsUnique (PostgreSQL: with the
	// job's events, one statement) forget the unique key a deleted job held.
	DeleteUnique, DeleteEventsUnique string
}

// flowBodies read the jobs_queued index (operation, priority DESC, run_at,
// id WHERE status = 'queued') and jobs_queued_key (migration 0014); a count
// stops at its limit, so a bound of 10,000 never reads more entries than that.
var flowBodies = FlowQueries{
	CountQueued:    `SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = 'queued' AND operation = ? LIMIT ?) q`,
	CountQueuedKey: `SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = 'queued' AND operation = ? AND queue_key = ? LIMIT ?) q`,
	QueueDepth:     `SELECT count(*) FROM jobs WHERE status = 'queued' AND operation = ?`,
	QueueAhead: `SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = 'queued' AND operation = ?
		AND (priority > ? OR (priority = ? AND (run_at < ? OR (run_at = ? AND id < ?)))) LIMIT ?) q`,
	Started:         `SELECT count(*), min(started_at) FROM jobs WHERE operation = ? AND started_at >= ?`,
	UniqueJob:       `SELECT job_id FROM job_unique WHERE operation = ? AND key = ?` + lockRow,
	InsertUniqueJob: `INSERT INTO job_unique (operation, key, job_id) VALUES (?, ?, ?)`,
	UpdateUniqueJob: `UPDATE job_unique SET job_id = ? WHERE operation = ? AND key = ?`,
	DeleteUnique:    `DELETE FROM job_unique WHERE job_id = ?`,
	DeleteEventsUnique: `WITH u AS (DELETE FROM job_unique WHERE job_id = $1)
		DELETE FROM events WHERE stream = $1`,
}

// FlowQueries renders admission's statements for the dialect.
func (d Dialect) FlowQueries() *FlowQueries {
	q := flowBodies
	v := reflect.ValueOf(&q).Elem()
	for i := range v.NumField() {
		v.Field(i).SetString(d.Render(v.Field(i).String()))
	}
	return &q
}

var flowSQLite, flowPostgreSQL = SQLite.FlowQueries(), PostgreSQL.FlowQueries()

func (d Dialect) flow() *FlowQueries {
	if d.numbered {
		return flowPostgreSQL
	}
	return flowSQLite
}

// CountQueued counts an operation's queued jobs (with key, those of the
// key), up to limit.
func (t *Tx) CountQueued(operation, key string, limit int) (int, error) {
	q := t.Dialect.flow()
	var n int
	var err error
	if key == "" {
		err = t.Conn.QueryRow(q.CountQueued, operation, limit).Scan(&n)
	} else {
		err = t.Conn.QueryRow(q.CountQueuedKey, operation, key, limit).Scan(&n)
	}
	return n, t.Interpret(err)
}

// UniqueJob reads (and, where rows lock, locks) the job holding a unique key.
func (t *Tx) UniqueJob(operation, key string) (string, error) {
	var id string
	err := t.Conn.QueryRow(t.Dialect.flow().UniqueJob, operation, key).Scan(&id)
	return id, t.Interpret(err)
}

// PutUniqueJob records that jobID holds a unique key.
func (t *Tx) PutUniqueJob(operation, key, jobID string, replace bool) error {
	q := t.Dialect.flow()
	if replace {
		return t.execOne("update unique job", q.UpdateUniqueJob, jobID, operation, key)
	}
	return t.exec("insert unique job", q.InsertUniqueJob, operation, key, jobID)
}

// QueueDepth counts an operation's queued jobs.
func (r *Reader) QueueDepth(ctx context.Context, operation string) (int, error) {
	var n int
	err := r.DB.QueryRow(ctx, r.Dialect.flow().QueueDepth, operation).Scan(&n)
	return n, r.Interpret(err)
}

// QueueAhead counts the queued jobs of j's operation that run before it, up to limit.
func (r *Reader) QueueAhead(ctx context.Context, j *errand.Job, limit int) (int, error) {
	var n int
	at := storage.Micros(j.RunAt)
	err := r.DB.QueryRow(ctx, r.Dialect.flow().QueueAhead, j.Operation, j.Priority, j.Priority, at, at, j.ID, limit).Scan(&n)
	return n, r.Interpret(err)
}

// Started counts an operation's jobs started since a time, with the earliest start.
func (r *Reader) Started(ctx context.Context, operation string, since time.Time) (int, time.Time, error) {
	var n int
	var first *int64
	err := r.DB.QueryRow(ctx, r.Dialect.flow().Started, operation, storage.Micros(since)).Scan(&n, &first)
	if err != nil || first == nil {
		return n, time.Time{}, r.Interpret(err)
	}
	return n, storage.FromMicros(*first), nil
}
