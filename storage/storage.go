// Package storage is the seam between errand's domain logic and its databases.
//
// A driver (storage/sqlite, storage/postgres) implements Store. Domain packages
// (job, queue, webhook, auth, audit, channel) run their logic inside
// Store.WithTx against the small Tx vocabulary below, so the same state machine
// runs on every driver; SQL stays inside the drivers. Both drivers pass the
// conformance suite in storage/storagetest, which calls these methods directly
// and pins each one's contract; the services' behaviour is tested in their own
// packages, over internal/teststore.
//
// # Names
//
// Methods are named alike in Reader and Tx and in both drivers:
//
//   - Get<Noun> reads one row by its id, or answers ErrNotFound. A Reader's
//     takes the tenant and finds only that tenant's row; a Tx's finds the row in
//     any tenant (the domain checks tenancy) and, on PostgreSQL, locks it for the
//     rest of the transaction.
//   - <Noun>By<Key> reads one row by another unique key (APIKeyByHash,
//     JobByIdempotencyKey).
//   - List<Nouns> reads a page of committed rows in a stated order.
//   - Insert/Update/Delete<Noun> write one row. Update and Delete of a row that
//     does not exist answer ErrNotFound (see each method for when).
//   - <State><Nouns> (QueuedJobs, ExpiredLeases, DueScheduled, ExpiredJobs,
//     DueDeliveries, EndpointDeliveries) claim rows for the transaction: on
//     drivers with row locks they are locked and rows locked by other
//     transactions are skipped, so two transactions never claim the same row.
//   - Expire<Nouns> deletes up to a limit of rows past their time and returns
//     how many it deleted.
//   - Next<Thing> returns the earliest time something is due (zero for none).
//
// # Contexts
//
// Reader and Store methods take a ctx and honour it. Tx methods take none: a
// transaction's statements run under the driver's own context on purpose,
// because drivers batch many callers' functions into one database transaction
// (group commit), and one caller's cancelled context must not interrupt a
// statement of a transaction it shares with others (SQLite would roll back the
// whole group). The ctx given to WithTx bounds only the wait for a writer.
//
// # Columns
//
// Both drivers store times as Unix microseconds (UTC), JSON as bytes, and empty
// optional values as NULL (columns.go). The row code (column lists, the
// statements both dialects share, and one scanner per row type) is written once
// in storage/sqlrow; each driver adds what its dialect needs (placeholders,
// locking clauses, the PostgreSQL batch and COPY paths).
package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/errandhq/errand"
)

// ErrNotFound is returned when a row does not exist. Drivers may wrap it: test
// with errors.Is.
var ErrNotFound = errors.New("not found")

// Store is a durable home for jobs and events.
type Store interface {
	Reader
	// WithTx runs fn in a write transaction and commits it durably before
	// returning. When fn returns an error nothing it wrote is kept, and WithTx
	// returns that error (or one wrapping it). A panic in fn is that call's error.
	//
	// fn may run on another goroutine, batched with other callers' functions
	// into one database transaction (group commit); it must not block, start
	// transactions of its own, or keep tx after it returns.
	//
	// fn may run more than once. PostgreSQL runs it again, in a transaction of
	// its own, when the group it ran in failed (another call's statement was
	// refused, or the COMMIT turned into a rollback), when one of its own
	// statements failed although fn returned nil, and after a deadlock, a
	// serialization failure or a race on an idempotency key (a bounded number of runs).
	// Only the last run's writes are kept, and only its events and
	// JobsReady/JobsScheduled reach the notifiers. A caller therefore must not:
	//   - cause effects outside the transaction from inside fn (sending, waking,
	//     counting, logging what "was done"): do them after WithTx returns nil;
	//   - keep state across runs without resetting it: assign what fn found to
	//     variables at the start of each run (results = results[:0]), never
	//     append to what an earlier run left;
	//   - hand fn values it changes in place and expect them untouched when it
	//     runs again (copy a job before changing it, or read it again in fn).
	// SQLite runs it again when a call of its group (it, or another) failed
	// after it wrote: calls run without a savepoint each, so the group is
	// rolled back and runs again with one per call.
	//
	// ctx bounds only the wait for a writer: once fn is handed over, WithTx
	// waits for the outcome even if ctx ends, because the work may commit.
	WithTx(ctx context.Context, fn func(Tx) error) error
	// Listen registers n to hear about every commit made after it registers,
	// in commit order (log order for events). A driver whose notifiers hear
	// commits shortly after WithTx returns (PostgreSQL's tailer) may also tell
	// n of commits made just before.
	Listen(n Notifier)
	// Hook registers h to run in the transaction of every event appended
	// after it registers (register hooks before the store is used).
	Hook(h EventHook)
	// Setting returns the value stored under key, first storing value when there
	// is none (so concurrent callers and nodes agree on one value).
	Setting(ctx context.Context, key, value string) (string, error)
	// Ping reports whether the store answers (and storage_full while writes
	// fail for want of space).
	Ping(ctx context.Context) error
	// Close stops the writer and closes the database.
	Close() error
}

// Reader reads committed state; it sees every transaction that has returned.
type Reader interface {
	// GetJob returns the job with id in tenant, or ErrNotFound.
	GetJob(ctx context.Context, tenant, id string) (*errand.Job, error)
	// ListJobs returns up to p.Limit jobs of p.Tenant, newest (highest id) first.
	ListJobs(ctx context.Context, p ListJobsParams) ([]*errand.Job, error)
	// ListEvents returns up to p.Limit events of a stream after a cursor, oldest
	// (lowest seq) first.
	ListEvents(ctx context.Context, p ListEventsParams) ([]*errand.Event, error)
	// TailCursor returns the cursor after which a stream's last n committed
	// events start (0 when it holds n or fewer): where ?last=n replays from.
	TailCursor(ctx context.Context, tenant, stream string, n int) (int64, error)
	// StreamFloor returns the highest cursor retention deleted from a stream (0
	// when none): a reader resuming from before it has missed events.
	StreamFloor(ctx context.Context, tenant, stream string) (int64, error)
	// LogHead returns the highest cursor the log has handed out (0 when none),
	// deleted events included: a reader resuming from beyond it holds a cursor
	// of another log (a backup restored since, another database).
	LogHead(ctx context.Context) (int64, error)
	// NextWakeup returns the earliest run_at of a scheduled job and the earliest
	// lease expiry of a running job (zero when there is none).
	NextWakeup(ctx context.Context) (runAt, leaseExpiry time.Time, err error)
	WebhookReader
	AccessReader
	BridgeReader
	TelemetryReader
	FlowReader
	ScheduleReader
}

// Tx is what domain logic may do inside a write transaction (see Store.WithTx:
// its function may run more than once). Its methods take no context: see the
// package documentation.
type Tx interface {
	// GetJob returns the job with id (any tenant), or ErrNotFound.
	GetJob(id string) (*errand.Job, error)
	// LockJobs tells the driver that GetJob will be called for these ids: one
	// that pays a round trip per statement reads and locks them all at once. It
	// changes nothing else; drivers may do nothing.
	LockJobs(ids []string) error
	// JobByIdempotencyKey returns the job submitted by tenant/owner with key,
	// or ErrNotFound.
	JobByIdempotencyKey(tenant, owner, key string) (*errand.Job, error)
	// InsertJob stores a new job. A job whose id (or tenant, owner and
	// idempotency key) exists already is refused, at the latest when WithTx
	// returns.
	InsertJob(j *errand.Job) error
	// UpdateJob writes every mutable field of j. A job that does not exist is
	// ErrNotFound: at once on SQLite; on PostgreSQL, which sends updates in
	// batches, from the statement that sends the batch or, at the latest, from
	// WithTx.
	UpdateJob(j *errand.Job) error
	// DeleteJob removes a job and its events, or returns ErrNotFound.
	DeleteJob(id string) error
	// InsertEvent appends e to the log and sets e.Seq, at the latest by the time
	// the transaction commits (a driver may send its writes in one batch at the
	// end). Within a transaction, events take increasing seqs in the order they
	// were inserted.
	InsertEvent(e *errand.Event) error
	// QueuedJobs returns up to limit queued jobs of operation in tenant ("" for
	// every tenant's) in the order they should run: priority (highest first),
	// then run_at, then id, and no more than maxBytes hold (0: no bound; see
	// ListJobsParams.MaxBytes). On drivers with row locks, the rows are locked
	// for this transaction and rows locked by others are skipped.
	QueuedJobs(tenant, operation string, limit int, maxBytes int64) ([]*errand.Job, error)
	// CountRunning returns how many jobs of operation are running. On drivers
	// with concurrent transactions it first serializes the transactions that
	// count the same operation, so that two cannot both see room under a limit.
	CountRunning(operation string) (int, error)
	// ExpiredLeases returns up to limit running jobs whose lease ended before
	// now, earliest expiry first (locked, skipping others', as QueuedJobs).
	ExpiredLeases(now time.Time, limit int) ([]*errand.Job, error)
	// DueScheduled returns up to limit scheduled jobs whose run_at is not after
	// now, earliest first (locked, skipping others', as QueuedJobs).
	DueScheduled(now time.Time, limit int) ([]*errand.Job, error)
	// ExpiredJobs returns the ids of up to limit jobs whose retention ended
	// before now, earliest first (locked, skipping others', as QueuedJobs).
	ExpiredJobs(now time.Time, limit int) ([]string, error)
	// ExpireEvents deletes up to limit events whose expires_at is before now and
	// raises their streams' floors to the highest seq it deleted; it returns how
	// many it deleted.
	ExpireEvents(now time.Time, limit int) (int, error)
	// JobsReady records that queued jobs of operation exist, so that after commit
	// the store tells its notifiers (and long-polling workers wake).
	JobsReady(operation string)
	// JobsScheduled records that a job became scheduled to run at runAt, so that
	// after commit the scheduler can wake in time.
	JobsScheduled(runAt time.Time)
	// GetSetting returns the value stored under key, or ErrNotFound.
	GetSetting(key string) (string, error)
	// PutSetting stores value under key, replacing any.
	PutSetting(key, value string) error
	WebhookTx
	AccessTx
	BridgeTx
	TelemetryTx
	FlowTx
	ScheduleTx
}

// EventHook runs inside the transaction of every event appended, right after
// the event: what it writes commits, or rolls back, with the event. The webhook
// outbox is one (it writes each event's deliveries), so no service can append
// an event without its deliveries. It runs again if the driver runs the
// transaction's fn again. Like Tx's methods it takes no context.
type EventHook interface {
	EventAppended(tx Tx, e *errand.Event) error
}

// Hooks is a driver's registered EventHooks. The zero value is ready.
type Hooks struct {
	mu   sync.RWMutex
	list []EventHook
}

// Hook registers h.
func (hs *Hooks) Hook(h EventHook) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.list = append(hs.list, h)
}

// EventAppended runs every hook for e, in the order registered, and stops at
// the first error.
func (hs *Hooks) EventAppended(tx Tx, e *errand.Event) error {
	hs.mu.RLock()
	list := hs.list
	hs.mu.RUnlock()
	for _, h := range list {
		if err := h.EventAppended(tx, e); err != nil {
			return err
		}
	}
	return nil
}

// Notifiers is a driver's registered Notifiers. The zero value is ready.
type Notifiers struct {
	mu   sync.Mutex
	list []Notifier
}

// Listen registers n.
func (ns *Notifiers) Listen(n Notifier) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.list = append(ns.list, n)
}

// Committed tells every registered Notifier of c, in the order registered.
func (ns *Notifiers) Committed(c *Commit) {
	ns.mu.Lock()
	list := ns.list
	ns.mu.Unlock()
	for _, n := range list {
		n.Committed(c)
	}
}

// Notifier hears about commits. Calls come in commit order from one goroutine and
// must not block.
type Notifier interface {
	// Committed is called after a transaction commits. c is shared: read it, keep
	// what you need, do not change it.
	Committed(c *Commit)
}

// Commit is what one committed transaction (or group of them) changed.
type Commit struct {
	// Events are the appended events, in log order.
	Events []*errand.Event
	// Ready are the operations that gained queued jobs.
	Ready []string
	// Scheduled is the earliest run_at of the jobs that became scheduled; zero if none.
	Scheduled time.Time
	// Changed names shared state that changed ("webhook_endpoints", "api_keys"):
	// every node's caches of it reload. Drivers set it for the tables they write.
	Changed []string
	// Deliveries are the webhook deliveries the transaction created. Only the
	// node that committed them hears of them (it makes their first attempt).
	Deliveries []*errand.Delivery
}

// Changed names, as drivers report them in Commit.Changed.
const (
	ChangedEndpoints = "webhook_endpoints"
	ChangedAPIKeys   = "api_keys"
)

// Add merges another transaction's changes into c.
func (c *Commit) Add(o *Commit) {
	c.Events = append(c.Events, o.Events...)
	c.Deliveries = append(c.Deliveries, o.Deliveries...)
next:
	for _, op := range o.Ready {
		for _, have := range c.Ready {
			if have == op {
				continue next
			}
		}
		c.Ready = append(c.Ready, op)
	}
	if !o.Scheduled.IsZero() && (c.Scheduled.IsZero() || o.Scheduled.Before(c.Scheduled)) {
		c.Scheduled = o.Scheduled
	}
	for _, x := range o.Changed {
		if !slices.Contains(c.Changed, x) {
			c.Changed = append(c.Changed, x)
		}
	}
}

// Empty reports whether the commit changed nothing anyone listens for.
func (c *Commit) Empty() bool {
	return len(c.Events) == 0 && len(c.Ready) == 0 && c.Scheduled.IsZero() && len(c.Changed) == 0 && len(c.Deliveries) == 0
}

// ListJobsParams selects jobs for ListJobs.
type ListJobsParams struct {
	Tenant string
	Owner  string // "" for every owner's
	// LegacyOwner, with Owner, also selects the jobs this owner holds: the same
	// principal's jobs stored before migration 0008 (errand.Principal.LegacyOwner).
	LegacyOwner string
	Operation   string        // "" for all
	Status      errand.Status // "" for all
	// Before, when set, returns only jobs with an id below it (the next page).
	Before string
	Limit  int
	// MaxBytes, when positive, ends the page early: a job is returned only
	// while the jobs before it hold less than MaxBytes (errand.Job.Bytes), so
	// the first always is. A driver stops reading there.
	MaxBytes int64
}

// ListEventsParams selects events for ListEvents.
type ListEventsParams struct {
	Tenant string
	Stream string
	After  int64 // sequence number; 0 for the start
	Limit  int
	// MaxBytes, when positive, ends the page early as in ListJobsParams
	// (errand.Event.Bytes).
	MaxBytes int64
}

// ByteBudget is a page's MaxBytes as a bound: a driver reads another row only
// while the rows it read hold less. 0 (or less) is no bound.
func ByteBudget(maxBytes int64) int64 {
	if maxBytes <= 0 {
		return math.MaxInt64
	}
	return maxBytes
}

// CheckHead refuses a cursor beyond the log's head (invalid_cursor): it was not
// issued by this log, or by a later state of it (a backup restored since), and
// reading after it would silently skip every event until the log reaches it.
func CheckHead(ctx context.Context, r Reader, after int64) error {
	if after == 0 {
		return nil
	}
	head, err := r.LogHead(ctx)
	if err != nil {
		return fmt.Errorf("log head: %w", err)
	}
	if after > head {
		return errand.Errorf(errand.ECURSOR, "cursor %d is beyond the last event (%d): it is not from this log, or the log was restored from a backup since", after, head)
	}
	return nil
}

// Get reads one job and maps ErrNotFound to the client-facing not-found error.
func Get(ctx context.Context, r Reader, tenant, id string) (*errand.Job, error) {
	j, err := r.GetJob(ctx, tenant, id)
	if errors.Is(err, ErrNotFound) {
		return nil, errand.Errorf(errand.EJOBNOTFOUND, "job %q does not exist", id)
	}
	return j, err
}

// WebhookReader reads webhook endpoints and deliveries.
type WebhookReader interface {
	// ListEndpoints returns a tenant's endpoints oldest first; tenant "" returns
	// every tenant's.
	ListEndpoints(ctx context.Context, tenant string) ([]*errand.Endpoint, error)
	// GetEndpoint returns the endpoint with id in tenant, or ErrNotFound.
	GetEndpoint(ctx context.Context, tenant, id string) (*errand.Endpoint, error)
	// ListDeliveries returns deliveries newest first, without payloads.
	ListDeliveries(ctx context.Context, p ListDeliveriesParams) ([]*errand.Delivery, error)
	// GetDelivery returns the delivery with id in tenant, with its payload, or ErrNotFound.
	GetDelivery(ctx context.Context, tenant, id string) (*errand.Delivery, error)
	// ListAttempts returns the attempts of each delivery, oldest first.
	ListAttempts(ctx context.Context, deliveryIDs []string) (map[string][]errand.Attempt, error)
	// NextDelivery returns the earliest next_attempt_at of a pending delivery
	// (zero when there is none).
	NextDelivery(ctx context.Context) (time.Time, error)
}

// WebhookTx is what the webhook outbox and deliverer may do in a write transaction.
type WebhookTx interface {
	// InsertEndpoint stores a new endpoint.
	InsertEndpoint(e *errand.Endpoint) error
	// UpdateEndpoint writes every mutable field of e, or returns ErrNotFound.
	UpdateEndpoint(e *errand.Endpoint) error
	// DeleteEndpoint removes an endpoint of tenant with its deliveries and their
	// attempts, or returns ErrNotFound.
	DeleteEndpoint(tenant, id string) error
	// GetEndpoint returns the endpoint with id (any tenant), or ErrNotFound.
	GetEndpoint(id string) (*errand.Endpoint, error)
	// InsertDelivery stores a new delivery with its payload.
	InsertDelivery(d *errand.Delivery) error
	// UpdateDelivery writes d's status, attempt count, step and attempt times,
	// or returns ErrNotFound.
	UpdateDelivery(d *errand.Delivery) error
	// GetDelivery returns the delivery with id (any tenant) with its payload,
	// or ErrNotFound.
	GetDelivery(id string) (*errand.Delivery, error)
	// InsertAttempt records an attempt of a delivery.
	InsertAttempt(deliveryID string, a *errand.Attempt) error
	// DueDeliveries returns up to limit pending deliveries, with payloads, whose
	// next attempt is not after now, earliest first. On drivers with row locks,
	// the rows are locked for this transaction and rows locked by others are
	// skipped.
	DueDeliveries(now time.Time, limit int) ([]*errand.Delivery, error)
	// EndpointDeliveries returns up to limit deliveries of an endpoint of
	// tenant, with payloads, created at or after since, in status, oldest
	// first (locked, skipping others', as DueDeliveries).
	EndpointDeliveries(tenant, endpointID string, status errand.DeliveryStatus, since time.Time, limit int) ([]*errand.Delivery, error)
	// ExpireDeliveries deletes up to limit finished deliveries (and their
	// attempts) created before before; it returns how many it deleted.
	ExpireDeliveries(before time.Time, limit int) (int, error)
}

// ListDeliveriesParams selects deliveries for ListDeliveries.
type ListDeliveriesParams struct {
	Tenant     string
	EndpointID string                // "" for callback deliveries and every endpoint's
	JobID      string                // "" for all
	Status     errand.DeliveryStatus // "" for all
	// Before, when set, returns only deliveries with an id below it (the next page).
	Before string
	Limit  int
}

// urgentKey marks a context whose write holds a worker up.
type urgentKey struct{}

// Urgent marks ctx's writes as ones a worker waits on (a lease, a completion,
// a heartbeat): a driver that groups commits may run them ahead of the others
// queued, and cut a long group of others short for them. Nothing else changes:
// an urgent write is as durable and as isolated as any.
func Urgent(ctx context.Context) context.Context { return context.WithValue(ctx, urgentKey{}, true) }

// IsUrgent reports whether ctx was marked by Urgent.
func IsUrgent(ctx context.Context) bool { v, _ := ctx.Value(urgentKey{}).(bool); return v }
