package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"modernc.org/sqlite"
)

// errClosed is returned for work handed to a writer that has stopped.
var errClosed = errand.Errorf(errand.EUNAVAILABLE, "the store is shutting down")

// request is one caller's transaction waiting for the writer.
type request struct {
	fn     func(storage.Tx) error
	done   chan error
	urgent bool // see storage.Urgent
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan error, 1)} }}

// writer owns the only write connection and runs group commits.
type writer struct {
	store   *Store
	conn    *sql.Conn
	stmts   writeStmts
	reqs    chan *request
	urgent  chan *request // storage.Urgent calls: they go first and may cut a long group short
	quit    chan struct{}
	stopped chan struct{}
	ctx     context.Context // for statements: a caller's cancel must never interrupt a shared transaction
	cancel  context.CancelFunc
	failed  error
	// wrote is set when the current call sends a statement that writes
	// (conn.Exec, conn.ExecRow); began is when the current group began.
	wrote bool
	began time.Time
}

func startWriter(ctx context.Context, s *Store) (*writer, error) {
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("writer connection: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	w := &writer{store: s, conn: conn, reqs: make(chan *request, s.cfg.MaxBatch), urgent: make(chan *request, s.cfg.MaxBatch),
		quit: make(chan struct{}), stopped: make(chan struct{}), ctx: wctx, cancel: cancel}
	if err := w.stmts.prepare(ctx, conn); err != nil {
		cancel()
		conn.Close()
		return nil, err
	}
	go w.loop()
	return w, nil
}

// do hands fn to the writer and waits until its batch has committed.
func (w *writer) do(ctx context.Context, fn func(storage.Tx) error) error {
	r := requestPool.Get().(*request)
	r.fn, r.urgent = fn, storage.IsUrgent(ctx)
	lane := w.reqs
	if r.urgent {
		lane = w.urgent
	}
	select {
	case lane <- r:
	case <-w.quit:
		requestPool.Put(r)
		return errClosed
	case <-ctx.Done():
		requestPool.Put(r)
		return ctx.Err()
	}
	// Once handed over, wait for the outcome even if ctx ends: the work may commit,
	// and the caller must not report failure for work that is on disk.
	err := <-r.done
	r.fn = nil
	requestPool.Put(r)
	return err
}

func (w *writer) alive() error {
	select {
	case <-w.stopped:
		return errClosed
	default:
		return nil
	}
}

func (w *writer) stop() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.stopped
}

// loop runs group commits. A group takes the urgent calls waiting first
// (storage.Urgent: a worker waits on each), then the rest a cut group left,
// then the others queued, up to MaxBatch; so urgent calls share the group's
// commit with the others (one WAL write of the pages they both touch) but
// never queue behind them. A group that has run cutAfter is cut short at the
// next call when it holds an urgent call or one is waiting: its rest goes
// first among the others next time. A worker's completion then waits at most
// about two cutAfters, not for a whole group of submits; a group shorter than
// that is never cut.
func (w *writer) loop() {
	defer close(w.stopped)
	defer w.conn.Close()
	defer w.stmts.close()
	defer w.cancel()
	batch := make([]*request, 0, w.store.cfg.MaxBatch)
	var rest []*request // the uncommitted tail of a cut group
	for {
		batch = batch[:0]
		if len(rest) == 0 {
			select {
			case r := <-w.urgent:
				batch = append(batch, r)
			case r := <-w.reqs:
				batch = append(batch, r)
			case <-w.quit:
				w.drain(nil)
				return
			}
		}
		batch = w.fill(batch, &rest)
		if done := w.commit(batch); done < len(batch) { // cut short: its rest goes first among the others
			rest = append(slices.Clone(batch[done:]), rest...)
		}
		select {
		case <-w.quit:
			w.drain(rest)
			return
		default:
		}
	}
}

// cutAfter is how long a group runs before an urgent call may cut it short:
// long enough that a group of a few calls shares one commit, short enough
// that a completion behind 64 submitters waits about a millisecond (the best
// of 300 µs, 1 ms and urgent groups of their own, bench cycle with and
// without --per-job in turn).
const cutAfter = 300 * time.Microsecond

// fill completes a group: the urgent calls waiting, then the cut group's
// rest, then the others queued, up to MaxBatch. A group begun with a normal
// call keeps it first (it may be the rest of a cut group's order).
func (w *writer) fill(batch []*request, rest *[]*request) []*request {
	if len(batch) == 0 || batch[0].urgent {
	urgent:
		for len(batch) < cap(batch) {
			select {
			case r := <-w.urgent:
				batch = append(batch, r)
			default:
				break urgent
			}
		}
	}
	n := min(len(*rest), cap(batch)-len(batch))
	batch = append(batch, (*rest)[:n]...)
	*rest = (*rest)[n:]
	for len(batch) < cap(batch) {
		select {
		case r := <-w.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// drain fails the requests left over and those still queued when the writer stops.
func (w *writer) drain(rest []*request) {
	for _, r := range rest {
		r.done <- errClosed
	}
	for {
		select {
		case r := <-w.reqs:
			r.done <- errClosed
		case r := <-w.urgent:
			r.done <- errClosed
		default:
			return
		}
	}
}

// commit runs batch in one transaction and returns how many of its requests
// it ran and answered: all of them, or, when it was cut short (see loop),
// those up to the call that ran then. A call runs without a savepoint of its
// own: most calls either succeed or fail before they write (a lease not
// held, a bad request), and a failed call that wrote nothing has nothing to
// undo. SAVEPOINT and RELEASE per call were a third of a submit's cost in the
// writer. When a call fails after it wrote, the group so far cannot be told
// apart from it: the transaction is rolled back and the group runs again with
// a savepoint per call (storage.Store.WithTx: fn may run more than once).
func (w *writer) commit(batch []*request) int {
	w.began = time.Now()
	errs, all, batch, err, again := w.group(batch, false)
	if again {
		_ = w.exec(w.stmts.rollback)
		errs, all, batch, err, _ = w.group(batch, true)
	}
	if err == nil {
		err = w.exec(w.stmts.commit)
	}
	if err != nil {
		_ = w.exec(w.stmts.rollback)
		err = w.groupError(err, errs)
		for i := range errs {
			errs[i] = err
		}
		all = storage.Commit{}
	}
	w.observe(batch, &all, w.began, err)
	if !all.Empty() {
		w.store.notify.Committed(&all)
	}
	for i, r := range batch {
		r.done <- w.store.space.Observe(errs[i])
	}
	return len(batch)
}

// fromDriver reports whether err came from SQLite itself (a read that hit
// an I/O error, say): SQLite may have rolled the whole transaction back, which
// only the savepoints' run finds out (its ROLLBACK TO fails the group).
func fromDriver(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se)
}

// group begins the transaction and runs the calls of batch in it, each under
// a savepoint when savepoints is set, and returns each call's error, what the
// calls that succeeded ask to be told, the calls it ran (batch, or the part
// of it before a cut) and the error that fails the whole group. again is set
// when, without savepoints, a call failed after it wrote (or with an error of
// SQLite's own): the caller rolls
// back and runs the group again with them.
func (w *writer) group(batch []*request, savepoints bool) (errs []error, all storage.Commit, ran []*request, err error, again bool) {
	errs = make([]error, len(batch))
	tx := newTxn(w)
	hasUrgent := false
	err = w.exec(w.stmts.begin)
	for i, r := range batch {
		if err != nil {
			break
		}
		tx.reset()
		w.wrote = false
		if savepoints {
			if err = w.exec(w.stmts.savepoint); err != nil {
				break
			}
		}
		raw := run(r.fn, tx)
		if errs[i] = w.interpret(raw); errs[i] != nil && (w.wrote || fromDriver(raw)) {
			if !savepoints {
				return errs, storage.Commit{}, batch, nil, true
			}
			err = w.exec(w.stmts.rollbackTo)
		}
		if err == nil && savepoints {
			err = w.exec(w.stmts.release)
		}
		if errs[i] == nil {
			all.Add(&tx.c)
		}
		hasUrgent = hasUrgent || r.urgent
		if err == nil && i+1 < len(batch) && !batch[i+1].urgent && (hasUrgent || len(w.urgent) > 0) && time.Since(w.began) >= cutAfter {
			return errs[:i+1], all, batch[:i+1], nil, false
		}
	}
	return errs, all, batch, err, false
}

// observe tells the store's Observer of a group commit or of its failure.
func (w *writer) observe(batch []*request, c *storage.Commit, began time.Time, err error) {
	o := w.store.cfg.Observer
	switch {
	case o == nil:
	case err != nil:
		o.Failed(err)
	default:
		o.Committed(&storage.CommitStats{Duration: time.Since(began), Calls: len(batch), Events: c.Events})
	}
}

// interpret is interpretError plus what only the writer can tell: an I/O
// error while the disk is full is storage_full.
func (w *writer) interpret(err error) error {
	if ioErrorFull(err, filepath.Dir(w.store.path)) {
		return storage.Full()
	}
	return interpretError(err)
}

// groupError is what every caller of a group that failed is told. A full disk
// is storage_full however it showed: SQLite may roll the whole transaction
// back on SQLITE_FULL, so the statement that hit it fails its caller and the
// ROLLBACK TO after it (or the COMMIT) fails the group.
func (w *writer) groupError(err error, errs []error) error {
	if e := w.interpret(err); errand.ErrorCode(e) == errand.ESTORAGEFULL {
		return e
	}
	for _, e := range errs {
		if errand.ErrorCode(e) == errand.ESTORAGEFULL {
			return e
		}
	}
	return fmt.Errorf("sqlite commit: %w", err)
}

// run calls fn, turning a panic into an error so one bad caller cannot stop the writer.
func run(fn func(storage.Tx) error, tx *txn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in transaction: %v", p)
		}
	}()
	return fn(tx)
}

func (w *writer) exec(st *sql.Stmt) error {
	_, err := st.ExecContext(w.ctx)
	return err
}
