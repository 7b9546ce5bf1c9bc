// Package storage is the seam between errand's domain logic and its databases.
//
// A driver (storage/sqlite, storage/postgres) implements Store. Domain packages run
// their logic inside Store.WithTx against the small Tx vocabulary below, so the same
// state machine runs on every driver; SQL stays inside the drivers, and both drivers
// pass the conformance suite in storage/storagetest.
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

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// Store is a durable home for jobs and events.
type Store interface {
	Reader
	// WithTx runs fn in a write transaction and commits it durably before returning.
	// When fn returns an error nothing it wrote is kept. fn may run on another
	// goroutine, batched with other callers' functions into one commit; it must not
	// block or start transactions of its own.
	WithTx(ctx context.Context, fn func(Tx) error) error
	// Listen registers n to hear about every commit after it registers, in
	// commit order.
	Listen(n Notifier)
	// Hook registers h to run in the transaction of every event appended
	// after it registers (register hooks before the store is used).
	Hook(h EventHook)
	// Setting returns the value stored under key, first storing value when there
	// is none (so concurrent callers and nodes agree on one value).
	Setting(ctx context.Context, key, value string) (string, error)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	// Close stops the writer and closes the database.
	Close() error
}

// Reader reads committed state; it sees every transaction that has returned.
type Reader interface {
	// GetJob returns the job with id in tenant, or ErrNotFound.
	GetJob(ctx context.Context, tenant, id string) (*errand.Job, error)
	// ListJobs returns jobs newest first.
	ListJobs(ctx context.Context, p ListJobsParams) ([]*errand.Job, error)
	// ListEvents returns a stream's events after a cursor, oldest first.
	ListEvents(ctx context.Context, p ListEventsParams) ([]*errand.Event, error)
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
}

// Tx is what domain logic may do inside a write transaction.
type Tx interface {
	// GetJob returns the job with id (any tenant), or ErrNotFound.
	GetJob(ctx context.Context, id string) (*errand.Job, error)
	// LockJobs tells the driver that GetJob will be called for these ids: one
	// that pays a round trip per statement reads and locks them all at once. It
	// changes nothing else; drivers may do nothing.
	LockJobs(ctx context.Context, ids []string) error
	// FindIdempotent returns the job submitted by tenant/owner with key, or ErrNotFound.
	FindIdempotent(ctx context.Context, tenant, owner, key string) (*errand.Job, error)
	// InsertJob stores a new job.
	InsertJob(ctx context.Context, j *errand.Job) error
	// UpdateJob writes every mutable field of j.
	UpdateJob(ctx context.Context, j *errand.Job) error
	// DeleteJob removes a job and its events.
	DeleteJob(ctx context.Context, id string) error
	// InsertEvent appends e to the log and sets e.Seq, at the latest by the time
	// the transaction commits (a driver may send its writes in one batch at the end).
	InsertEvent(ctx context.Context, e *errand.Event) error
	// QueuedJobs returns up to limit queued jobs of operation in tenant ("" for
	// every tenant's) in the order they should run: priority (highest first),
	// then run_at, then id, and no more than maxBytes hold (0: no bound; see
	// ListJobsParams.MaxBytes). On drivers with row locks, the rows are locked
	// for this transaction and rows locked by others are skipped.
	QueuedJobs(ctx context.Context, tenant, operation string, limit int, maxBytes int64) ([]*errand.Job, error)
	// CountRunning returns how many jobs of operation are running.
	CountRunning(ctx context.Context, operation string) (int, error)
	// ExpiredLeases returns up to limit running jobs whose lease ended before now.
	ExpiredLeases(ctx context.Context, now time.Time, limit int) ([]*errand.Job, error)
	// DueScheduled returns up to limit scheduled jobs whose run_at is not after now.
	DueScheduled(ctx context.Context, now time.Time, limit int) ([]*errand.Job, error)
	// ExpiredJobs returns the ids of up to limit finished jobs whose retention ended before now.
	ExpiredJobs(ctx context.Context, now time.Time, limit int) ([]string, error)
	// ExpireEvents deletes up to limit events whose expires_at is before now and
	// raises their streams' floors; it returns how many it deleted.
	ExpireEvents(ctx context.Context, now time.Time, limit int) (int, error)
	// JobsReady records that queued jobs of operation exist, so that after commit
	// the store tells its notifiers (and long-polling workers wake).
	JobsReady(operation string)
	// JobsScheduled records that a job became scheduled to run at runAt, so that
	// after commit the scheduler can wake in time.
	JobsScheduled(runAt time.Time)
	WebhookTx
	AccessTx
}

// EventHook runs inside the transaction of every event appended, right after
// the event: what it writes commits, or rolls back, with the event. The webhook
// outbox is one (it writes each event's deliveries), so no service can append
// an event without its deliveries. It runs again if the driver runs the
// transaction's fn again.
type EventHook interface {
	EventAppended(ctx context.Context, tx Tx, e *errand.Event) error
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
func (hs *Hooks) EventAppended(ctx context.Context, tx Tx, e *errand.Event) error {
	hs.mu.RLock()
	list := hs.list
	hs.mu.RUnlock()
	for _, h := range list {
		if err := h.EventAppended(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
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
	InsertEndpoint(ctx context.Context, e *errand.Endpoint) error
	// UpdateEndpoint writes every mutable field of e, or returns ErrNotFound.
	UpdateEndpoint(ctx context.Context, e *errand.Endpoint) error
	// DeleteEndpoint removes an endpoint of tenant with its deliveries and their
	// attempts, or returns ErrNotFound.
	DeleteEndpoint(ctx context.Context, tenant, id string) error
	// EndpointByID returns the endpoint with id (any tenant), or ErrNotFound.
	EndpointByID(ctx context.Context, id string) (*errand.Endpoint, error)
	// InsertDelivery stores a new delivery with its payload.
	InsertDelivery(ctx context.Context, d *errand.Delivery) error
	// UpdateDelivery writes d's status, attempt count, step and attempt times,
	// or returns ErrNotFound.
	UpdateDelivery(ctx context.Context, d *errand.Delivery) error
	// DeliveryByID returns the delivery with id (any tenant) with its payload, or ErrNotFound.
	DeliveryByID(ctx context.Context, id string) (*errand.Delivery, error)
	// InsertAttempt records an attempt of a delivery.
	InsertAttempt(ctx context.Context, deliveryID string, a *errand.Attempt) error
	// DueDeliveries returns up to limit pending deliveries, with payloads, whose
	// next attempt is not after now, earliest first. On drivers with row locks,
	// the rows are locked for this transaction and rows locked by others are
	// skipped.
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]*errand.Delivery, error)
	// EndpointDeliveries returns up to limit deliveries of an endpoint of
	// tenant, with payloads, created at or after since, in status, oldest first.
	EndpointDeliveries(ctx context.Context, tenant, endpointID string, status errand.DeliveryStatus, since time.Time, limit int) ([]*errand.Delivery, error)
	// ExpireDeliveries deletes up to limit finished deliveries (and their
	// attempts) created before before; it returns how many it deleted.
	ExpireDeliveries(ctx context.Context, before time.Time, limit int) (int, error)
	// GetSetting returns the value stored under key, or ErrNotFound.
	GetSetting(ctx context.Context, key string) (string, error)
	// PutSetting stores value under key, replacing any.
	PutSetting(ctx context.Context, key, value string) error
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
