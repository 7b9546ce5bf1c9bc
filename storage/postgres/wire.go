package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Round trips. Under load a transaction's time is its round trips, not its
// statements: each is a wake-up of the PostgreSQL backend and of the writer
// goroutine, and with two cores busy each costs about a millisecond. So the
// statements that only frame the work — BEGIN, SAVEPOINT, RELEASE SAVEPOINT —
// are not sent on their own: they wait (t.lead) and go in front of the next
// statement, in its round trip; and COMMIT goes in the round trip of the last
// writes when nothing they report could still undo the transaction (see
// commit). A one-job completion is then two round trips (BEGIN with the read
// of its job; its writes with COMMIT) where it was four.

// errCommitUnknown marks the calls of a group whose COMMIT may or may not have
// happened (the connection failed during it): running them again could do
// them twice, so they answer 503.
var errCommitUnknown = errors.New("the connection failed during COMMIT")

// errLead marks a framing statement (BEGIN, SAVEPOINT, RELEASE) that failed:
// the transaction's savepoints are not what the group believes, so it cannot
// go on.
var errLead = errors.New("a transaction's framing statement failed")

// begin starts the transaction on c: BEGIN waits for the first statement.
func (t *txn) begin(c *pgx.Conn) {
	t.conn = c
	t.lead = append(t.lead[:0], "BEGIN")
	t.open = true
}

// exec runs one statement, after the framing statements waiting.
func (t *txn) exec(q string, args ...any) (pgconn.CommandTag, error) {
	if len(t.lead) == 0 {
		return t.conn.Exec(t.ctx, q, args...)
	}
	br, err := t.sendLead(q, args...)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// rows runs a query, after the framing statements waiting.
func (t *txn) rows(q string, args ...any) (pgx.Rows, error) {
	if len(t.lead) == 0 {
		return t.conn.Query(t.ctx, q, args...)
	}
	br, err := t.sendLead(q, args...)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &leadRows{Rows: rows, br: br}, nil
}

// row runs a query of one row, after the framing statements waiting.
func (t *txn) row(q string, args ...any) pgx.Row {
	if len(t.lead) == 0 {
		return t.conn.QueryRow(t.ctx, q, args...)
	}
	br, err := t.sendLead(q, args...)
	if err != nil {
		return errRow{err}
	}
	return &leadRow{row: br.QueryRow(), br: br}
}

// sendLead sends the framing statements waiting and q in one batch, reads
// the framing statements' results, and returns the batch at q's.
func (t *txn) sendLead(q string, args ...any) (pgx.BatchResults, error) {
	var b pgx.Batch
	for _, s := range t.lead {
		b.Queue(s)
	}
	n := len(t.lead)
	t.lead = t.lead[:0]
	b.Queue(q, args...)
	br := t.conn.SendBatch(t.ctx, &b)
	for range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			t.leadFailed = true
			return nil, fmt.Errorf("%w: %w", errLead, err)
		}
	}
	return br, nil
}

// sendWaiting sends the framing statements waiting on their own, before a
// statement that cannot share a batch (COPY).
func (t *txn) sendWaiting() error {
	n := len(t.lead)
	if n == 0 {
		return nil
	}
	last := t.lead[n-1]
	t.lead = t.lead[:n-1]
	if _, err := t.exec(last); err != nil {
		t.leadFailed = true
		return fmt.Errorf("%w: %w", errLead, err)
	}
	return nil
}

// queueLead puts the framing statements waiting at the head of p.
func (t *txn) queueLead(p *pipeline) {
	if len(t.lead) == 0 {
		return
	}
	var head pipeline
	for _, s := range t.lead {
		head.queue(func(br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				t.leadFailed = true
				return fmt.Errorf("%w: %w", errLead, err)
			}
			return nil
		}, s)
	}
	t.lead = t.lead[:0]
	head.b.QueuedQueries = append(head.b.QueuedQueries, p.b.QueuedQueries...)
	head.checks = append(head.checks, p.checks...)
	*p = head
}

// commit sends what is kept and commits. The COMMIT rides in the round trip
// of the last writes when none of them can still fail the transaction after
// the fact: every job they update is one the transaction locked or wrote (an
// update of a job that is not there is found only when its result is read,
// by which time a COMMIT beside it would have run). An error whose outcome is
// not known — the connection failed once COMMIT was sent — wraps
// errCommitUnknown; any other error means nothing was committed.
func (t *txn) commit() error {
	if !t.open {
		return nil
	}
	if t.began0() { // nothing was ever sent: there is nothing to commit
		if len(t.inserts) == 0 && len(t.updates) == 0 && len(t.events) == 0 {
			t.lead, t.open = t.lead[:0], false
			return nil
		}
	}
	if t.lost != nil { // fn went on (and returned nil) after hearing of it
		return t.lost
	}
	if !t.mayCommitBeside() {
		if err := t.flush(); err != nil {
			return err
		}
		if t.lost != nil {
			return t.lost
		}
		return t.sendCommit()
	}
	t.committing = true
	err := t.flush()
	t.committing = false
	if t.open { // the writes went without it (nothing to send, or COPY last)
		if err != nil {
			return err
		}
		return t.sendCommit()
	}
	if err != nil && t.outcomeUnknown(err) {
		return fmt.Errorf("%w: %w", errCommitUnknown, err)
	}
	return err
}

// outcomeUnknown reports, after the batch that carried the COMMIT failed with
// err, whether the transaction may have committed. The connection says what
// the server did: in a failed transaction ('E') a statement was refused and
// the COMMIT skipped; idle ('I') with the COMMIT's own result an error, the
// COMMIT failed. Idle otherwise, the COMMIT ran although a result read before
// it failed its check (the writes are in); a connection that broke, or a
// FATAL error, leaves it unknown. Nothing sent (pgconn.SafeToRetry) is known.
func (t *txn) outcomeUnknown(err error) bool {
	if pgconn.SafeToRetry(err) {
		return false
	}
	if fatal(err) {
		return true
	}
	pc := t.conn.PgConn()
	if pc.IsClosed() {
		return true
	}
	switch pc.TxStatus() {
	case 'E', 'T':
		return false
	default: // 'I'
		return !t.commitFailed
	}
}

// began0 reports whether BEGIN is still waiting: no statement was sent.
func (t *txn) began0() bool { return len(t.lead) > 0 && t.lead[0] == "BEGIN" }

// mayCommitBeside reports whether COMMIT may go in the batch of the last
// writes: every job they update was locked or written by this transaction,
// and no event goes by COPY (that comes after the batch).
func (t *txn) mayCommitBeside() bool {
	if len(t.events) >= copyFrom {
		return false
	}
	for _, j := range t.updates {
		if _, ok := t.mine[j.ID]; !ok {
			return false
		}
	}
	return true
}

// queueCommit ends p with the COMMIT (see commit).
func (t *txn) queueCommit(p *pipeline) {
	t.open = false
	p.queue(func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err == nil && tag.String() == "ROLLBACK" {
			err = pgx.ErrTxCommitRollback
		}
		if err != nil {
			t.commitFailed = true
			return commitError(err)
		}
		return nil
	}, "COMMIT")
}

// sendCommit sends COMMIT on its own (with the framing statements waiting).
func (t *txn) sendCommit() error {
	t.open = false
	tag, err := t.exec("COMMIT")
	if err == nil && tag.String() == "ROLLBACK" {
		err = pgx.ErrTxCommitRollback
	}
	return commitError(err)
}

// commitError marks a failed COMMIT whose outcome is unknown (not the
// database's answer: the connection failed during it).
func commitError(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if fatal(err) || (!errors.As(err, &pe) && !errors.Is(err, pgx.ErrTxCommitRollback) && !pgconn.SafeToRetry(err)) {
		return fmt.Errorf("%w: %w", errCommitUnknown, err)
	}
	return err
}

// fatal reports a FATAL or PANIC error: the server ended the session, maybe
// after a COMMIT took effect.
func fatal(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Severity == "FATAL" || pe.Severity == "PANIC")
}

// rollback ends a transaction that will not commit. A connection left in a
// transaction is closed by the pool when released, so a failed ROLLBACK
// loses nothing.
func (t *txn) rollback() {
	t.open = false
	if t.began0() {
		t.lead = t.lead[:0]
		return
	}
	t.lead = t.lead[:0]
	if t.conn.PgConn().TxStatus() != 'I' {
		_, _ = t.conn.Exec(t.ctx, "ROLLBACK")
	}
}

// leadRow is a row read in the batch of framing statements: the batch is
// closed once it is scanned.
type leadRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r *leadRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// leadRows are rows read in the batch of framing statements: the batch is
// closed with them.
type leadRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
}

func (r *leadRows) Close() {
	r.Rows.Close()
	if !r.closed {
		r.closed = true
		_ = r.br.Close()
	}
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
