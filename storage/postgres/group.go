package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// Group commit. Concurrent WithTx calls are taken by a few writers, each
// running all the calls waiting for it in one PostgreSQL transaction: one
// commit (one WAL flush) and one multi-row statement per kind of write for the
// whole group. A call's writes stay in memory until a statement needs them
// sent (batch.go), so a call that fails before then is dropped from memory; a
// call that has sent writes runs under a savepoint, rolled back if it fails.
// If the group's transaction itself fails, every call in it runs again alone.

// request is one WithTx call waiting for a writer.
type request struct {
	ctx  context.Context
	fn   func(storage.Tx) error
	done chan error
	c    storage.Commit
}

// maxGroup is the most calls one transaction runs.
const maxGroup = 256

func (s *Store) startWriters(n int) {
	s.reqs = make(chan *request, maxGroup*n)
	s.urgent = make(chan *request, maxGroup*n)
	for range n {
		go s.writer()
	}
}

// writer runs groups: the urgent calls waiting (storage.Urgent: a worker
// waits on each) in groups of their own, taken before the others, so that a
// worker's completion never waits behind a group of submits. While urgent
// calls keep coming (one came in the last urgentWindow) only one writer at a
// time runs a group of the others: the database's CPU goes to the calls a
// worker waits on first, as the SQLite writer's order does.
func (s *Store) writer() {
	group := make([]*request, 0, maxGroup)
	recheck := time.NewTimer(time.Hour)
	defer recheck.Stop()
	for {
		group = group[:0]
		select {
		case r := <-s.urgent:
			group = append(group, r)
		default:
			if !s.takeNormal() {
				recheck.Reset(urgentWindow)
				select {
				case r := <-s.urgent:
					group = append(group, r)
				case <-recheck.C:
					continue
				case <-s.quit:
					return
				}
				break
			}
			select {
			case r := <-s.urgent:
				group = append(group, r)
				s.normalRunning.Add(-1)
			case r := <-s.reqs:
				group = append(group, r)
			case <-s.quit:
				return
			}
		}
		lane := s.reqs
		if isUrgent(group[0]) {
			lane = s.urgent
		}
	fill:
		for len(group) < maxGroup {
			select {
			case r := <-lane:
				group = append(group, r)
			default:
				break fill
			}
		}
		s.runGroup(group)
		if lane == s.reqs {
			s.normalRunning.Add(-1)
		}
	}
}

// urgentWindow is how long after an urgent call the others run one group at
// a time.
const urgentWindow = 10 * time.Millisecond

// takeNormal takes a slot for a group of calls that are not urgent: any of
// the writers' when no urgent call came within urgentWindow, else one.
func (s *Store) takeNormal() bool {
	limit := int32(s.cfg.Writers)
	if time.Since(time.Unix(0, s.lastUrgent.Load())) < urgentWindow {
		limit = 1
	}
	for {
		n := s.normalRunning.Load()
		if n >= limit {
			return false
		}
		if s.normalRunning.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func isUrgent(r *request) bool { return storage.IsUrgent(r.ctx) }

// submit hands fn to a writer and waits for its outcome.
func (s *Store) submit(ctx context.Context, fn func(storage.Tx) error) (*request, error) {
	r := &request{ctx: ctx, fn: fn, done: make(chan error, 1)}
	lane := s.reqs
	if storage.IsUrgent(ctx) {
		lane = s.urgent
		s.lastUrgent.Store(time.Now().UnixNano())
	}
	select {
	case lane <- r:
	case <-s.quit:
		return nil, errand.Errorf(errand.EUNAVAILABLE, "the store is shutting down")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once handed over, wait even if ctx ends: the work may commit.
	return r, <-r.done
}

// runGroup runs the calls in one transaction. A call whose outcome the group
// did not decide — the group failed, or the call failed for a reason that is
// not its own answer (a statement the database refused, a deadlock) — runs
// again alone.
func (s *Store) runGroup(group []*request) {
	if len(group) == 1 {
		r := group[0]
		r.done <- s.alone(r)
		return
	}
	errs, maxSeq, ok := s.together(group)
	for i, r := range group {
		if ok && errs[i] == nil {
			s.tail.committed(&r.c, maxSeq)
		}
	}
	for i, r := range group {
		switch {
		case ok && errs[i] == nil:
			r.done <- nil
		case errors.Is(errs[i], errCommitUnknown): // before isAnswer: it may wrap another call's refusal
			r.done <- unavailable(errs[i])
		case isAnswer(errs[i]): // the call's own answer, whatever became of the rest
			r.done <- errs[i]
		default:
			r.done <- s.alone(r)
		}
	}
}

// isAnswer reports whether err is a call's own verdict (the domain's, or the
// database being away) rather than a statement that failed in the group.
func isAnswer(err error) bool {
	var e *errand.Error
	return err != nil && (errors.As(err, &e) || errors.Is(err, storage.ErrNotFound))
}

// alone runs one call in its own transaction, retrying conflicts.
func (s *Store) alone(r *request) error {
	for attempt := 1; ; attempt++ {
		t := newTxn(s)
		err := s.runTx(r.ctx, t, r.fn)
		if err == nil {
			s.tail.committed(&t.c, t.maxSeq)
			s.observe(t, 1)
			return nil
		}
		if attempt == 5 || !retryable(err) {
			err = interpretError(err)
			if c := errand.ErrorCode(err); c == errand.EUNAVAILABLE || c == errand.ESTORAGEFULL {
				s.observeFailure(err) // the database's failure, not the call's answer
			}
			return err
		}
	}
}

// together runs the group in one transaction. ok says it committed; errs are
// the calls' own errors (nil for those that succeeded, or that never ran
// because the group stopped before them).
func (s *Store) together(group []*request) (errs []error, maxSeq int64, ok bool) {
	errs = make([]error, len(group))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := s.pool.Acquire(actx)
	acancel()
	if err != nil {
		for i := range errs {
			errs[i] = unavailable(err)
		}
		return errs, 0, false
	}
	defer conn.Release()
	t := newTxn(s)
	t.begin(conn.Conn())
	t.ctx, t.group, t.began = ctx, true, time.Now()
	for i, r := range group {
		t.beginCall()
		var goOn bool
		if errs[i], goOn = t.settleCall(run(r.fn, t)); !goOn {
			// A statement failed that no savepoint covers: the transaction is
			// lost, and with it what every call so far did.
			t.rollback()
			s.observeFailure(errStatementFailed)
			return errs, 0, false
		}
		if errs[i] == nil {
			r.c = t.callCommit()
		}
	}
	if err := t.commit(); err != nil {
		t.rollback()
		s.observeFailure(err)
		if errors.Is(err, errCommitUnknown) {
			// The connection failed during COMMIT: the group may have committed.
			for i := range errs {
				if errs[i] == nil {
					errs[i] = err
				}
			}
		}
		return errs, 0, false
	}
	s.observe(t, len(group))
	return errs, t.maxSeq, true
}

// observe tells the Observer of a transaction that committed with calls.
func (s *Store) observe(t *txn, calls int) {
	if o := s.cfg.Observer; o != nil {
		o.Committed(&storage.CommitStats{Duration: time.Since(t.began), Calls: calls, Events: t.sent})
	}
}

// observeFailure tells the Observer of a group transaction that failed.
func (s *Store) observeFailure(err error) {
	if o := s.cfg.Observer; o != nil {
		o.Failed(err)
	}
}

// settleCall ends the current call of a group: released when it succeeded,
// undone (its kept writes dropped, what it sent rolled back to its savepoint)
// when it failed. A call that returned nil although one of its statements
// failed is failed here with errStatementFailed (it runs again alone). goOn is
// false when the transaction cannot go on: a statement failed outside any
// savepoint, or undoing the call failed.
func (t *txn) settleCall(err error) (_ error, goOn bool) {
	failed := t.aborted()
	if t.leadFailed {
		return cmp.Or(err, errStatementFailed), false
	}
	if failed && !t.call.savepoint {
		return err, false
	}
	if err == nil && !failed {
		return nil, t.endCall() == nil
	}
	if err == nil {
		err = errStatementFailed
	}
	return err, t.abandonCall() == nil && !t.aborted()
}

// errStatementFailed is the error of a call that returned nil although a
// statement it sent failed.
var errStatementFailed = errors.New("a statement of the call failed")

// aborted reports whether a statement of the transaction failed (PostgreSQL
// then refuses every statement until a ROLLBACK TO SAVEPOINT), or a batch of
// updates found a job missing (t.lost; undone by the same rollback).
func (t *txn) aborted() bool {
	return t.lost != nil || t.conn.PgConn().TxStatus() == 'E'
}

// call is where the current call's writes begin in the kept buffers.
type call struct {
	updates, events, inserts int
	savepoint                bool
	sent                     int // len(t.sent) when its savepoint was taken
	ready                    []string
	scheduled                time.Time
}

func (t *txn) beginCall() {
	t.call = call{updates: len(t.updates), events: len(t.events), inserts: len(t.inserts)}
	t.c = storage.Commit{}
}

// ownPending reports whether the current call has kept writes.
func (t *txn) ownPending() bool {
	return len(t.updates) > t.call.updates || len(t.events) > t.call.events || len(t.inserts) > t.call.inserts
}

// send sends the kept writes before a statement that must see them (write:
// the statement itself changes rows). In a group, what the current call sends
// — its kept writes or the statement — must be undoable, so the first time it
// sends anything the writes of the calls before it are sent, then a savepoint
// is taken.
func (t *txn) send(write bool) error {
	if t.group && !t.call.savepoint && (write || t.ownPending()) {
		if err := t.flushBefore(); err != nil {
			return err
		}
		t.lead = append(t.lead, `SAVEPOINT call`) // goes with the call's first statement
		t.call.savepoint, t.call.sent = true, len(t.sent)
	}
	return t.flush()
}

// flushBefore sends the writes kept by the calls before the current one.
func (t *txn) flushBefore() error {
	u, e, in := t.updates[t.call.updates:], t.events[t.call.events:], t.inserts[t.call.inserts:]
	t.updates, t.events, t.inserts = t.updates[:t.call.updates], t.events[:t.call.events], t.inserts[:t.call.inserts]
	t.updated = nil
	err := t.flush()
	t.updates, t.events, t.inserts = append(t.updates, u...), append(t.events, e...), append(t.inserts, in...)
	t.reindex()
	return err
}

// abandonCall undoes a failed call: its kept writes are dropped, what it sent
// is rolled back to its savepoint, and jobs it read are read again.
func (t *txn) abandonCall() error {
	t.updates, t.events, t.inserts = t.updates[:t.call.updates], t.events[:t.call.events], t.inserts[:t.call.inserts]
	t.reindex()
	t.locked, t.mine = nil, nil // its locks are released with what it did
	t.c = storage.Commit{}
	if t.call.savepoint {
		t.sent = t.sent[:t.call.sent] // what it sent is undone
		_, err := t.exec(`ROLLBACK TO SAVEPOINT call`)
		if err == nil {
			t.lost = nil
		}
		return err
	}
	return nil
}

func (t *txn) endCall() error {
	if t.call.savepoint {
		t.lead = append(t.lead, `RELEASE SAVEPOINT call`) // goes with the next statement
	}
	return nil
}

// callCommit is what the current call asks to be told after commit.
func (t *txn) callCommit() storage.Commit {
	return storage.Commit{Ready: slices.Clone(t.c.Ready), Scheduled: t.c.Scheduled, Changed: slices.Clone(t.c.Changed),
		Deliveries: slices.Clone(t.c.Deliveries)}
}

// reindex rebuilds the id → index map of kept updates.
func (t *txn) reindex() {
	t.updated = nil
	for i, j := range t.updates {
		if t.updated == nil {
			t.updated = map[string]int{}
		}
		t.updated[j.ID] = i
	}
}
