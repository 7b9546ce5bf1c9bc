package sqlrow

import (
	"context"
	"fmt"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// The telemetry parts of storage.Reader and storage.Tx: the queue's gauges
// and the usage rows. Their statements are rendered where they run (they run
// seldom: once per scrape interval, once per usage flush).

// UsageColumns are a usage row's columns, in ScanUsage's order.
const UsageColumns = `tenant, operation, step, bucket, node, submitted, succeeded, failed, canceled, events,
	deliveries, artifact_bytes, run_time, queue_wait`

// qQueueStats counts queued jobs (with the earliest run_at: the oldest is the
// one waiting longest) and running jobs per operation; each part reads only
// its state's partial index (jobs_queued and jobs_running cover operation).
const qQueueStats = `SELECT operation, 'queued', count(*), min(run_at) FROM jobs WHERE status = 'queued' GROUP BY operation
	UNION ALL SELECT operation, 'running', count(*), NULL FROM jobs WHERE status = 'running' GROUP BY operation
	ORDER BY 1, 2`

// qTenantQueueStats is qQueueStats of one tenant's jobs, read from the
// jobs_queue_stats index alone (migration 0013); the oldest run_at of running
// jobs is dropped by the scanner.
const qTenantQueueStats = `SELECT operation, status, count(*), min(run_at) FROM jobs WHERE tenant = ? AND status IN ('queued', 'running')
	GROUP BY operation, status ORDER BY 1, 2`

// qPutUsage writes one node's row of a bucket whole (the node holds the
// bucket's running totals, so a second write of the same row changes nothing).
const qPutUsage = `INSERT INTO usage (` + UsageColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (tenant, step, bucket, operation, node) DO UPDATE SET submitted = excluded.submitted,
	succeeded = excluded.succeeded, failed = excluded.failed, canceled = excluded.canceled, events = excluded.events,
	deliveries = excluded.deliveries, artifact_bytes = excluded.artifact_bytes, run_time = excluded.run_time,
	queue_wait = excluded.queue_wait`

// qExpireUsage deletes a step's oldest rows, up to a limit.
const qExpireUsage = `DELETE FROM usage WHERE (tenant, step, bucket, operation, node) IN
	(SELECT tenant, step, bucket, operation, node FROM usage WHERE step = ? AND bucket < ? ORDER BY bucket LIMIT ?)`

// QueueStats counts the queued and running jobs of each operation.
func (r *Reader) QueueStats(ctx context.Context) ([]storage.QueueStat, error) {
	return list(ctx, r, "queue stats", qQueueStats, nil, scanQueueStat)
}

// TenantQueueStats counts the queued and running jobs of each operation in
// one tenant.
func (r *Reader) TenantQueueStats(ctx context.Context, tenant string) ([]storage.QueueStat, error) {
	stats, err := list(ctx, r, "tenant queue stats", qTenantQueueStats, []any{tenant}, scanQueueStat)
	for i := range stats {
		if stats[i].Status != errand.StatusQueued {
			stats[i].Oldest = time.Time{}
		}
	}
	return stats, err
}

func scanQueueStat(row Row) (storage.QueueStat, error) {
	{
		var st storage.QueueStat
		var status string
		var oldest *int64
		err := row.Scan(&st.Operation, &status, &st.Count, &oldest)
		st.Status = errand.Status(status)
		if oldest != nil {
			st.Oldest = storage.FromMicros(*oldest)
		}
		return st, err
	}
}

// ListUsage reads every node's usage rows of a tenant's buckets.
func (r *Reader) ListUsage(ctx context.Context, p storage.ListUsageParams) ([]storage.UsageRow, error) {
	var w Where
	w.Add("tenant = ?", p.Tenant)
	w.Add("step = ?", int64(p.Step/time.Second))
	w.Add("bucket >= ?", storage.Micros(p.From))
	w.Add("bucket < ?", storage.Micros(p.To))
	if p.Operation != "" {
		w.Add("operation = ?", p.Operation)
	}
	return list(ctx, r, "list usage", `SELECT `+UsageColumns+` FROM usage WHERE `+w.SQL()+
		` ORDER BY bucket, operation, node LIMIT ?`, w.Args(p.Limit), ScanUsage)
}

// ScanUsage reads a row of UsageColumns.
func ScanUsage(r Row) (storage.UsageRow, error) {
	var u storage.UsageRow
	var step, bucket int64
	err := r.Scan(&u.Tenant, &u.Operation, &step, &bucket, &u.Node, &u.Submitted, &u.Succeeded, &u.Failed,
		&u.Canceled, &u.Events, &u.Deliveries, &u.ArtifactBytes, &u.RunTime, &u.QueueWait)
	u.Step, u.Bucket = time.Duration(step)*time.Second, storage.FromMicros(bucket)
	return u, err
}

// UsageArgs are the arguments of one row of qPutUsage (in UsageColumns' order).
func UsageArgs(u *storage.UsageRow) []any {
	return []any{u.Tenant, u.Operation, int64(u.Step / time.Second), storage.Micros(u.Bucket), u.Node, u.Submitted,
		u.Succeeded, u.Failed, u.Canceled, u.Events, u.Deliveries, u.ArtifactBytes, storage.NullBytes(u.RunTime),
		storage.NullBytes(u.QueueWait)}
}

// PutUsage writes usage rows, one statement each (SQLite's are in-process;
// PostgreSQL sends them as one).
func (t *Tx) PutUsage(rows []storage.UsageRow) error {
	q := t.Dialect.Render(qPutUsage)
	for i := range rows {
		if err := t.exec("put usage", q, UsageArgs(&rows[i])...); err != nil {
			return err
		}
	}
	return nil
}

// ExpireUsage deletes up to limit rows of step older than before.
func (t *Tx) ExpireUsage(step time.Duration, before time.Time, limit int) (int, error) {
	n, err := t.Conn.Exec(t.Dialect.Render(qExpireUsage), int64(step/time.Second), storage.Micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("expire usage: %w", err)
	}
	return int(n), nil
}
