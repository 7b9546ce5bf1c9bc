package storage

import (
	"context"
	"time"

	"github.com/errandhq/errand"
)

// Observer hears how a driver's database transactions go, for metrics,
// traces and usage (set it in the driver's Config). Its methods run on the
// driver's writer goroutines, after the commit and before the callers of
// WithTx return, so the jobs the events carry are not changing under it; they
// must be quick and must not block.
type Observer interface {
	// Committed reports one database transaction that committed on this node
	// (a group of WithTx calls, or one). Only this node's commits are
	// reported, each once: on PostgreSQL every node's notifiers hear every
	// node's events, but each node's Observer hears its own.
	Committed(c *CommitStats)
	// Failed reports a database transaction that failed as a whole (a group
	// whose COMMIT or statement failed; its calls then ran again alone or were
	// refused), not a call that returned its own error.
	Failed(err error)
}

// CommitStats is what Observer.Committed hears. It is shared: read it, keep
// what you need, do not change it.
type CommitStats struct {
	// Duration is from BEGIN to the end of COMMIT (the fsync on SQLite).
	Duration time.Duration
	// Calls is how many WithTx calls the transaction carried (group commit).
	Calls int
	// Events are the events the calls that succeeded appended, in log order,
	// each with Event.Job (and Event.TraceParent) as its appender set it.
	Events []*errand.Event
}

// Stats are a driver's gauges at one moment, for metrics. Drivers without a
// part leave it nil.
type Stats struct {
	// Pool is the connection pool (PostgreSQL).
	Pool *PoolStats
	// Tailer is the ordered reader of other nodes' events (PostgreSQL).
	Tailer *TailerStats
}

// PoolStats describe a connection pool.
type PoolStats struct {
	// Acquired, Idle and Total are connections in use, idle, and both
	// (connecting ones too); Max is the pool's size.
	Acquired, Idle, Total, Max int32
	// Acquires counts connections handed out since the pool opened; Waited
	// those that had to wait for one; WaitTime is the time they waited in all.
	Acquires, Waited int64
	WaitTime         time.Duration
}

// TailerStats describe how far the event tailer is behind.
type TailerStats struct {
	// Behind is how many committed events it has read but not yet passed on
	// (held back by a gap below them).
	Behind int64
	// GapAge is how long the oldest gap it waits on has lasted; 0 for none.
	GapAge time.Duration
}

// QueueStat is how many jobs of an operation are in one waiting or running
// status.
type QueueStat struct {
	Operation string
	Status    errand.Status
	Count     int64
	// Oldest is the earliest run_at among them: for queued jobs, how long the
	// longest-waiting one has been due.
	Oldest time.Time
}

// UsageRow is one node's usage of one tenant and operation in one bucket
// (package telemetry keeps and reads them). Each node writes only its own rows
// (Node), whole, so writes from several nodes never meet; readers sum them.
type UsageRow struct {
	Tenant    string
	Operation string // "" for what belongs to no operation
	// Step is the bucket's width (a minute or an hour); Bucket its start.
	Step   time.Duration
	Bucket time.Time
	Node   string
	// The counters, as errand.UsageCounts names them.
	Submitted, Succeeded, Failed, Canceled, Events, Deliveries, ArtifactBytes int64
	// RunTime and QueueWait are encoded histograms (opaque to the store).
	RunTime, QueueWait []byte
}

// ListUsageParams selects usage rows for ListUsage.
type ListUsageParams struct {
	Tenant    string
	Operation string // "" for every operation's
	Step      time.Duration
	// From and To bound the buckets: starting at or after From, before To.
	From, To time.Time
	// Limit caps the rows read.
	Limit int
}

// TelemetryReader reads what metrics and usage analytics need.
type TelemetryReader interface {
	// QueueStats counts the scheduled, queued and running jobs of every
	// operation that has any, in operation then status order.
	QueueStats(ctx context.Context) ([]QueueStat, error)
	// TenantQueueStats is QueueStats of one tenant's jobs (the dashboard's
	// overview of a tenant).
	TenantQueueStats(ctx context.Context, tenant string) ([]QueueStat, error)
	// ListUsage returns every node's usage rows that p selects, by bucket,
	// operation and node.
	ListUsage(ctx context.Context, p ListUsageParams) ([]UsageRow, error)
}

// TelemetryTx is what the usage recorder does in a write transaction.
type TelemetryTx interface {
	// PutUsage writes rows, each replacing the row of its tenant, operation,
	// step, bucket and node (writing the same rows again changes nothing).
	PutUsage(rows []UsageRow) error
	// ExpireUsage deletes up to limit rows of step whose bucket starts before
	// before; it returns how many it deleted.
	ExpireUsage(step time.Duration, before time.Time, limit int) (int, error)
}
