package storage

import (
	"context"
	"time"

	"github.com/errandhq/errand"
)

// OperationFlow is an operation's execution state, shared by every node: its
// pause and start_rate's place (GCRA). An operation no one paused or
// throttled has no row: its state is the zero value.
type OperationFlow struct {
	Operation string
	// Paused stops its leases (submits are still accepted).
	Paused bool
	// StartTAT is start_rate's theoretical arrival time: the next start is
	// due no earlier than StartTAT less the burst's allowance. Zero when none
	// started yet.
	StartTAT time.Time
	// UpdatedAt is when it was last paused or resumed (zero when never).
	UpdatedAt time.Time
}

// QueuedParams selects queued jobs for QueuedJobsWhere: QueuedJobs' choice,
// narrowed by flow control.
type QueuedParams struct {
	Tenant    string // "" for every tenant's
	Operation string
	Limit     int
	// MaxBytes bounds what the jobs hold (0: no bound; see QueuedJobs).
	MaxBytes int64
	// FairKey, when not nil, selects only jobs with this fair key.
	FairKey *string
	// SkipKeys leaves out jobs whose concurrency key is one of these (keys
	// running at their limit).
	SkipKeys []string
}

// ScheduleTx is what the lease path and the operation admin do in a write
// transaction (flow control, #15).
type ScheduleTx interface {
	// OperationFlow reads operation's state (the zero state, with Operation
	// set, when none is stored). It takes no lock: a pause that commits while
	// a lease transaction runs holds from the next one.
	OperationFlow(operation string) (OperationFlow, error)
	// SetPaused pauses (or resumes) operation at now, storing its state.
	SetPaused(operation string, paused bool, now time.Time) error
	// LockStartTAT returns operation's StartTAT and holds its row for the
	// rest of the transaction: concurrent lease transactions of the operation
	// (on every node) take turns between it and PutStartTAT.
	LockStartTAT(operation string) (time.Time, error)
	// PutStartTAT stores operation's StartTAT.
	PutStartTAT(operation string, tat time.Time) error
	// RunningByKey counts operation's running jobs by concurrency key (keys
	// with none running are absent, and so are jobs without a key, ""). As CountRunning, it first serializes the
	// transactions that count the same operation.
	RunningByKey(operation string) (map[string]int, error)
	// FairKeys returns the distinct fair keys of operation's queued jobs in
	// tenant ("" for every tenant's), in order, at most limit: one index seek
	// per key, however many jobs each holds. Jobs without a key ("") have none.
	FairKeys(tenant, operation string, limit int) ([]string, error)
	// QueuedJobsWhere claims queued jobs as QueuedJobs does (same order,
	// locks and byte budget), of those p selects.
	QueuedJobsWhere(p QueuedParams) ([]*errand.Job, error)
	// QueuedHeads claims, in one statement, the heads of several fair keys:
	// for each quota up to N of the queued jobs p selects (p.FairKey and
	// p.Limit are not used) with fair key Key, in run order within each key,
	// the keys in the quotas' order; no more than p.MaxBytes hold (0: no
	// bound). Locks as QueuedJobs.
	QueuedHeads(p QueuedParams, quotas []KeyQuota) ([]*errand.Job, error)
}

// KeyQuota is how many of one fair key's queued jobs to claim.
type KeyQuota struct {
	Key string
	N   int
}

// ScheduleReader reads what an operation's view shows.
type ScheduleReader interface {
	// OperationFlows returns every stored operation state, by operation.
	OperationFlows(ctx context.Context) ([]OperationFlow, error)
	// RunningCounts counts the running jobs of every operation that has any.
	RunningCounts(ctx context.Context) (map[string]int, error)
}
