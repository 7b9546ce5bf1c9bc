// Package audit keeps errand's append-only audit log: failed authentications,
// permission denials and administrative acts, by whom, on what, when.
package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/lifecycle"
	"github.com/errandhq/errand/storage"
)

// Config tunes the audit log. The zero value is ready to use.
type Config struct {
	// Retention is how long entries are kept. Defaults to 90 days.
	Retention time.Duration
	// Queue is how many entries may wait to be written; past it, denials and
	// failures are counted and dropped (so a flood of bad requests cannot stall
	// the server) while administrative acts wait. Defaults to 10,000.
	Queue int
	// FailureWindow is how long failed authentications from one source are
	// gathered into one entry (see Failure). Defaults to 1 minute.
	FailureWindow time.Duration
	// MaxFailureSources caps the sources whose failures are counted one by one
	// in a window; failures from more are counted together. Defaults to 1,000.
	MaxFailureSources int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Log receives write failures and drop counts. Defaults to discarding.
	Log *slog.Logger
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.Retention = cmp.Or(out.Retention, errand.DefaultAuditRetention)
	out.Queue = cmp.Or(out.Queue, 10000)
	out.FailureWindow = cmp.Or(out.FailureWindow, errand.DefaultFailureWindow)
	out.MaxFailureSources = cmp.Or(out.MaxFailureSources, 1000)
	if out.Now == nil {
		out.Now = time.Now
	}
	if out.Log == nil {
		out.Log = slog.New(slog.DiscardHandler)
	}
	return out
}

// Log writes audit entries in batches, one transaction per batch.
type Log struct {
	store   storage.Store
	cfg     Config
	queue   chan item
	dropped atomic.Int64
	fails   *failures

	loop lifecycle.Loop
}

type item struct {
	e    *errand.AuditEntry
	done chan error // nil for entries nobody waits on
}

// New returns an audit log over store; Start begins writing.
func New(store storage.Store, cfg *Config) (*Log, error) {
	c := cfg.withDefaults()
	if c.Retention < time.Hour || c.FailureWindow <= 0 || c.Queue < 1 || c.MaxFailureSources < 1 {
		return nil, errors.New("audit config: retention must be at least an hour; failure window, queue and sources positive")
	}
	return &Log{store: store, cfg: c, queue: make(chan item, c.Queue), fails: newFailures(c.MaxFailureSources, c.Now())}, nil
}

// Record queues an entry without waiting; it is written within a few
// milliseconds, or dropped and counted when the queue is full.
func (l *Log) Record(e errand.AuditEntry) {
	l.stamp(&e)
	select {
	case l.queue <- item{e: &e}:
	default:
		l.dropped.Add(1)
	}
}

// Write appends an entry and waits until it is committed.
func (l *Log) Write(ctx context.Context, e errand.AuditEntry) error {
	l.stamp(&e)
	done := make(chan error, 1)
	select {
	case l.queue <- item{e: &e, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Failure records a failed authentication of route (the route's pattern, not
// the path: "GET /v1/jobs/{id}"). The first failure of each source (Remote),
// action, route and reason in a FailureWindow is written at once; the others
// are counted and written as one entry with their count when the window ends,
// so a flood of bad tokens costs a few rows a minute. The resource (a path or
// a client id: what the caller chose) is cut to 128 bytes.
func (l *Log) Failure(e errand.AuditEntry, route string) {
	e.Resource = errand.Truncate(e.Resource, 128)
	if l.fails.add(&e, route) {
		l.Record(e)
	}
}

// stamp dates an entry and bounds what it holds; lease tokens never reach the log.
func (l *Log) stamp(e *errand.AuditEntry) {
	if e.Time.IsZero() {
		e.Time = l.cfg.Now().UTC()
	}
	e.Detail = errand.Truncate(errand.RedactLeases(e.Detail), 500)
	e.Resource = errand.Truncate(errand.RedactLeases(e.Resource), 300)
	e.Subject = errand.Truncate(e.Subject, 200)
}

// Start begins writing queued entries and trimming old ones.
func (l *Log) Start(ctx context.Context) error {
	l.loop.Go(ctx, l.run)
	return nil
}

// Stop writes what is queued and stops.
func (l *Log) Stop(ctx context.Context) error { return l.loop.Halt(ctx) }

func (l *Log) run(ctx context.Context) {
	trim := time.NewTicker(time.Hour)
	defer trim.Stop()
	window := time.NewTicker(l.cfg.FailureWindow)
	defer window.Stop()
	l.trim(ctx)
	for {
		select {
		case it := <-l.queue:
			l.flush(context.WithoutCancel(ctx), it)
		case <-window.C:
			l.countFailures()
		case <-trim.C:
			l.trim(ctx)
		case <-ctx.Done():
			l.countFailures()
			for {
				select {
				case it := <-l.queue:
					l.flush(context.WithoutCancel(ctx), it)
				default:
					return
				}
			}
		}
	}
}

// flush writes first and whatever else is queued, up to 500, in one transaction.
func (l *Log) flush(ctx context.Context, first item) {
	batch := []item{first}
	for len(batch) < 500 {
		select {
		case it := <-l.queue:
			batch = append(batch, it)
			continue
		default:
		}
		break
	}
	entries := make([]*errand.AuditEntry, len(batch))
	for i, it := range batch {
		entries[i] = it.e
	}
	if n := l.dropped.Swap(0); n > 0 {
		entries = append(entries, &errand.AuditEntry{Time: l.cfg.Now().UTC(), Action: "audit:dropped",
			Outcome: errand.AuditFailed, Detail: strconv.FormatInt(n, 10) + " entries dropped: the audit queue was full"})
		l.cfg.Log.Warn("audit entries dropped", "count", n)
	}
	err := l.store.WithTx(ctx, func(tx storage.Tx) error { return tx.InsertAudit(entries) })
	if err != nil {
		l.cfg.Log.Error("audit write failed", "entries", len(entries), "err", err)
	}
	for _, it := range batch {
		if it.done != nil {
			it.done <- err
		}
	}
}

func (l *Log) trim(ctx context.Context) {
	before := l.cfg.Now().Add(-l.cfg.Retention)
	for ctx.Err() == nil {
		var n int
		err := l.store.WithTx(ctx, func(tx storage.Tx) error {
			var err error
			n, err = tx.ExpireAudit(before, 1000)
			return err
		})
		if err != nil {
			if ctx.Err() == nil {
				l.cfg.Log.Warn("audit retention", "err", err)
			}
			return
		}
		if n < 1000 {
			return
		}
	}
}

// Query selects entries for List.
type Query struct {
	Action, Subject, Outcome string
	// After follows the log: entries after this cursor, oldest first. Without
	// it, pages go back from Before (newest first).
	After, Before string
	Limit         int // 1 to 1000; defaults to 100
}

// Page is a List answer.
type Page struct {
	Entries []*errand.AuditEntry
	// Next is the cursor of the next page (Before) or, when following, the
	// cursor to pass as After next time.
	Next string
}

// countFailures queues the counts of the failure window that ends now.
func (l *Log) countFailures() {
	for _, e := range l.fails.take(l.cfg.Now().UTC()) {
		l.Record(*e)
	}
}

// List reads the entries p may see: its tenant's; with audit:read@*
// (operator-level), every tenant's and the failed authentications of callers
// errand could not tell, which belong to no tenant.
func (l *Log) List(ctx context.Context, p *errand.Principal, q Query) (*Page, error) {
	if !p.Can(errand.PermAuditRead, "") || (p.Tenant == "" && !p.CanEveryTenant(errand.PermAuditRead, "")) {
		return nil, errand.Deny(errand.PermAuditRead, "audit log")
	}
	q.Limit = cmp.Or(q.Limit, 100)
	if q.Limit < 1 || q.Limit > 1000 {
		return nil, errand.Errorf(errand.EINVALID, "limit must be between 1 and 1000")
	}
	after, err := parseSeq(q.After)
	if err != nil {
		return nil, err
	}
	before, err := parseSeq(q.Before)
	if err != nil {
		return nil, err
	}
	follow := q.After != ""
	es, err := l.store.ListAudit(ctx, storage.ListAuditParams{Tenant: p.Tenant,
		AllTenants: p.CanEveryTenant(errand.PermAuditRead, ""), Action: q.Action,
		Subject: q.Subject, Outcome: q.Outcome, Follow: follow, After: after, Before: before, Limit: q.Limit})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	page := &Page{Entries: es}
	switch {
	case follow:
		page.Next = q.After
		if len(es) > 0 {
			page.Next = strconv.FormatInt(es[len(es)-1].Seq, 10)
		}
	case len(es) == q.Limit:
		page.Next = strconv.FormatInt(es[len(es)-1].Seq, 10)
	}
	return page, nil
}

func parseSeq(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errand.Errorf(errand.ECURSOR, "cursor %q is not one errand issued", errand.Truncate(s, 64))
	}
	return n, nil
}
