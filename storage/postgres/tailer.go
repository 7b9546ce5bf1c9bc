package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/lifecycle"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/sqlrow"
	"github.com/jackc/pgx/v5"
)

// tailer feeds this node's notifiers. It reads the event log in seq order and
// delivers each event once, never past a gap it cannot yet explain: a missing
// seq belongs to a transaction still running (wait for it) or to one that rolled
// back (skip it once every transaction that could hold it has ended, which the
// snapshot's xmin tells). Its cursor is the horizon readers see up to. It also
// passes on this node's and other nodes' ready-work and schedule notes, so every
// notifier is called from this one goroutine.
type tailer struct {
	s    *Store
	node string
	poke chan struct{}
	loop lifecycle.Loop // its goroutines: run, listenLoop, announce

	mu       sync.Mutex
	cursor   int64 // every event with seq <= cursor has been delivered (or never committed)
	seen     int64 // the highest committed seq read
	advanced chan struct{}
	pending  []*storage.Commit // notes to pass on
	gap      *gap
	known    map[int64]*errand.Event // events above the cursor already at hand, by seq

	out         storage.Commit // this node's notes not yet announced to the others
	outEvents   bool
	announceNow chan struct{}
}

// gap is missing seqs below upTo, the highest seq of the read that saw them
// missing: all were taken before that read. horizon is a transaction id taken
// after it (0 until then): every transaction that took one of the missing seqs
// had its id before (InsertEvent makes sure), so once no transaction below
// horizon is running, the missing seqs have committed (and are read) or never
// will.
type gap struct {
	upTo    int64
	horizon uint64
	seen    time.Time
}

// gapGrace is how long a gap may wait for its transaction to commit before the
// tailer takes a horizon (a transaction of its own) to tell a rollback. Most
// gaps are commits in flight and close well within it.
const gapGrace = 20 * time.Millisecond

func startTailer(ctx context.Context, s *Store) (*tailer, error) {
	var id [6]byte
	_, _ = rand.Read(id[:])
	t := &tailer{s: s, node: hex.EncodeToString(id[:]), poke: make(chan struct{}, 1), advanced: make(chan struct{}), announceNow: make(chan struct{}, 1),
		known: map[int64]*errand.Event{}}
	if err := t.settle(ctx); err != nil {
		return nil, err
	}
	conn, err := t.listen(ctx)
	if err != nil {
		return nil, err
	}
	t.loop.Go(ctx, t.run, t.announce, func(ctx context.Context) { t.listenLoop(ctx, conn) })
	return t, nil
}

// settle starts the cursor at the newest seq, once every transaction that may
// hold a seq below it has ended (so none commits below the cursor later, unseen
// by this node's hub). It runs before the node serves: what committed before is
// read as history.
func (t *tailer) settle(ctx context.Context) error {
	if err := t.s.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&t.cursor); err != nil {
		return interpretError(err)
	}
	h, err := t.takeHorizon(ctx)
	if err != nil {
		return interpretError(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var xs string
		if err := t.s.pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&xs); err != nil {
			return interpretError(err)
		}
		if xmin, _ := strconv.ParseUint(xs, 10, 64); xmin >= h {
			return nil
		}
	}
	return nil // a transaction open for 10 s: go on (its events may reach this node's hub late or not at all)
}

// Horizon is the highest cursor readers may see.
func (t *tailer) horizon() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cursor
}

// stats is how far the tailer is behind what it has read.
func (t *tailer) stats() *storage.TailerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := &storage.TailerStats{Behind: max(0, t.seen-t.cursor)}
	if t.gap != nil {
		st.GapAge = time.Since(t.gap.seen)
	}
	return st
}

func (t *tailer) wake() {
	select {
	case t.poke <- struct{}{}:
	default:
	}
}

// committed passes on a local commit's notes and wakes the tailer for its
// events. It does not wait for them to reach the notifiers: every commit would
// then wait for every commit before it (ordering is global), and writers would
// move at the tailer's pace. Readers wait instead, and only when what they read
// is past the horizon (see Store.ListEvents).
func (t *tailer) committed(c *storage.Commit, maxSeq int64) {
	if len(c.Ready) > 0 || !c.Scheduled.IsZero() || len(c.Changed) > 0 || len(c.Deliveries) > 0 || maxSeq > 0 {
		t.mu.Lock()
		if len(c.Ready) > 0 || !c.Scheduled.IsZero() || len(c.Changed) > 0 || len(c.Deliveries) > 0 {
			t.pending = append(t.pending, &storage.Commit{Ready: c.Ready, Scheduled: c.Scheduled, Changed: c.Changed,
				Deliveries: c.Deliveries})
		}
		t.out.Add(&storage.Commit{Ready: c.Ready, Scheduled: c.Scheduled, Changed: c.Changed}) // deliveries stay on this node
		t.outEvents = t.outEvents || maxSeq > 0
		t.mu.Unlock()
		t.wake()
		select {
		case t.announceNow <- struct{}{}:
		default:
		}
	}
}

// waitFor waits until the tailer has passed seq (or ctx ends).
func (t *tailer) waitFor(ctx context.Context, seq int64) {
	t.wake()
	for {
		t.mu.Lock()
		cur, ch := t.cursor, t.advanced
		t.mu.Unlock()
		if cur >= seq {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-t.loop.Context().Done():
			return
		}
	}
}

func (t *tailer) stop() { _ = t.loop.Halt(context.Background()) }

func (t *tailer) run(ctx context.Context) {
	for {
		wait := time.Second
		t.mu.Lock()
		if t.gap != nil {
			wait = 5 * time.Millisecond // a transaction is about to commit, or has rolled back
		}
		t.mu.Unlock()
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-t.poke:
		case <-timer.C:
		}
		timer.Stop()
		t.dispatchNotes()
		for t.step() {
		}
	}
}

func (t *tailer) dispatchNotes() {
	t.mu.Lock()
	notes := t.pending
	t.pending = nil
	t.mu.Unlock()
	for _, c := range notes {
		t.s.notify.Committed(c)
	}
}

// tailBatch is how many events one read takes.
const tailBatch = 1000

// step reads and delivers the next events; it reports whether there may be more.
// It reads seqs first and fetches only the events it does not already hold:
// this node's own (kept when their transaction sent them) and those a gap held
// back on an earlier step. On one node that is every event, so the log is
// never read back.
func (t *tailer) step() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.mu.Lock()
	from := t.cursor
	t.mu.Unlock()
	seqs, xmin, err := t.readSeqs(ctx, from)
	if err != nil {
		return false
	}
	evs, err := t.events(ctx, seqs)
	if err != nil {
		return false
	}
	if len(seqs) > 0 {
		t.mu.Lock()
		t.seen = max(t.seen, seqs[len(seqs)-1])
		t.mu.Unlock()
	}
	ready := t.inOrder(evs, xmin)
	t.mu.Lock()
	needHorizon := t.gap != nil && t.gap.horizon == 0 && time.Since(t.gap.seen) > gapGrace
	t.mu.Unlock()
	if needHorizon {
		if h, err := t.takeHorizon(ctx); err == nil {
			t.mu.Lock()
			if t.gap != nil && t.gap.horizon == 0 {
				t.gap.horizon = h
			}
			t.mu.Unlock()
		}
	}
	if len(ready) > 0 {
		c := &storage.Commit{Events: ready}
		t.s.notify.Committed(c)
	}
	t.mu.Lock()
	moved := t.cursor != from
	if moved {
		close(t.advanced)
		t.advanced = make(chan struct{})
	}
	t.mu.Unlock()
	return moved && len(seqs) == tailBatch
}

// readSeqs reads the committed seqs after from, in order, and the snapshot's
// xmin (as of the same statement).
func (t *tailer) readSeqs(ctx context.Context, from int64) ([]int64, uint64, error) {
	rows, err := t.s.pool.Query(ctx, `WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin)
		SELECT snap.xmin, e.seq FROM snap LEFT JOIN LATERAL
		(SELECT seq FROM events WHERE seq > $1 ORDER BY seq LIMIT $2) e ON true`, from, tailBatch)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var xmin uint64
	var seqs []int64
	for rows.Next() {
		var xs string
		var seq *int64
		if err := rows.Scan(&xs, &seq); err != nil {
			return nil, 0, err
		}
		xmin, _ = strconv.ParseUint(xs, 10, 64)
		if seq != nil { // nil: no events, the row only carries the snapshot
			seqs = append(seqs, *seq)
		}
	}
	return seqs, xmin, rows.Err()
}

// events returns the events of seqs (committed ones), from those held or
// fetched; fetched ones are held until the cursor passes them.
func (t *tailer) events(ctx context.Context, seqs []int64) ([]*errand.Event, error) {
	evs := make([]*errand.Event, len(seqs))
	var missing []int64
	t.mu.Lock()
	for i, seq := range seqs {
		if evs[i] = t.known[seq]; evs[i] == nil {
			missing = append(missing, seq)
		}
	}
	t.mu.Unlock()
	if len(missing) == 0 {
		return evs, nil
	}
	rows, err := t.s.pool.Query(ctx, `SELECT `+sqlrow.EventColumns+` FROM events WHERE seq = ANY($1)`, missing)
	fetched, err := sqlrow.Collect(rows, err, sqlrow.ScanEvent)
	err = interpretError(err)
	if err != nil {
		return nil, err
	}
	byseq := make(map[int64]*errand.Event, len(fetched))
	t.mu.Lock()
	for _, e := range fetched {
		byseq[e.Seq] = e
		t.hold(e)
	}
	t.mu.Unlock()
	for i, seq := range seqs {
		if evs[i] == nil {
			evs[i] = byseq[seq]
		}
	}
	// A seq read a moment ago may be gone (retention): deliver up to it only.
	for i, e := range evs {
		if e == nil {
			return evs[:i], nil
		}
	}
	return evs, nil
}

// keep holds events this node's transaction is sending, by seq, so the tailer
// need not read them back once they commit. Events of a transaction that rolls
// back are dropped when the cursor passes their seqs.
func (t *tailer) keep(evs []*errand.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range evs {
		if e.Seq > t.cursor {
			c := *e
			c.Job = nil // as read from the log: the job as of the event is in Data
			t.hold(&c)
		}
	}
}

// maxHeld bounds the events the tailer holds (~50 MB of typical events). While
// something holds its cursor back (a long transaction elsewhere on the cluster)
// this node's events would pile up; past the bound they are read back instead.
const maxHeld = 100_000

// hold keeps e until the cursor passes it, room permitting (t.mu held).
func (t *tailer) hold(e *errand.Event) {
	if len(t.known) < maxHeld {
		t.known[e.Seq] = e
	}
}

// inOrder advances the cursor over evs as far as no unexplained gap stops it
// and returns the events passed. One horizon explains every missing seq below
// the highest seq of the read that first saw the gap (all of those were taken
// before the horizon), so a run of rolled-back transactions costs one horizon,
// not one each.
func (t *tailer) inOrder(evs []*errand.Event, xmin uint64) []*errand.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*errand.Event
	for _, e := range evs {
		if e.Seq > t.cursor+1 && t.gap != nil && t.gap.horizon != 0 && xmin >= t.gap.horizon {
			// Every transaction that could hold a missing seq below upTo has ended.
			t.passTo(max(t.cursor, min(e.Seq, t.gap.upTo)-1))
		}
		if t.gap != nil && t.cursor >= t.gap.upTo-1 {
			t.gap = nil
		}
		if e.Seq > t.cursor+1 {
			if t.gap == nil {
				t.gap = &gap{upTo: evs[len(evs)-1].Seq, seen: time.Now()}
			}
			return out // a transaction that may hold the missing seqs is still running
		}
		t.passTo(e.Seq)
		out = append(out, e)
	}
	if t.gap != nil && t.cursor >= t.gap.upTo-1 {
		t.gap = nil
	}
	return out
}

// passTo moves the cursor to seq, forgetting the events held up to it.
func (t *tailer) passTo(seq int64) {
	for s := t.cursor + 1; s <= seq; s++ {
		delete(t.known, s)
	}
	t.cursor = seq
}

// takeHorizon takes a transaction id now, in a transaction that commits without
// waiting for its (empty) commit record to reach disk.
func (t *tailer) takeHorizon(ctx context.Context) (uint64, error) {
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(`SELECT pg_current_xact_id()::text`)
	b.Queue(`COMMIT`)
	br := t.s.pool.SendBatch(ctx, b)
	defer br.Close()
	var x string
	if _, err := br.Exec(); err != nil {
		return 0, err
	}
	if _, err := br.Exec(); err != nil {
		return 0, err
	}
	if err := br.QueryRow().Scan(&x); err != nil {
		return 0, err
	}
	if _, err := br.Exec(); err != nil {
		return 0, err
	}
	return strconv.ParseUint(x, 10, 64)
}

// listen opens the connection that LISTENs for other nodes' notes.
func (t *tailer) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, t.s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, unavailable(err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+t.s.channel()); err != nil {
		conn.Close(ctx)
		return nil, interpretError(err)
	}
	return conn, nil
}

// listenLoop turns notifications into wake-ups and notes; it reconnects after
// losing the connection (and then catches up: a note may have been missed).
func (t *tailer) listenLoop(ctx context.Context, conn *pgx.Conn) {
	backoff := 100 * time.Millisecond
	for {
		for conn == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			var err error
			if conn, err = t.listen(ctx); err != nil {
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
			t.wake() // catch up on events whose note was missed
		}
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			conn.Close(context.Background())
			conn = nil
			if ctx.Err() != nil {
				return
			}
			continue
		}
		t.note(n.Payload)
	}
}

// notePayload encodes a commit's notes: node id, then e (events), r:op,op
// (ready work) and s:µs (scheduled), separated by '|'.
func notePayload(c *storage.Commit, maxSeq int64, node string) string {
	parts := []string{node}
	if maxSeq > 0 {
		parts = append(parts, "e")
	}
	if len(c.Ready) > 0 {
		parts = append(parts, "r:"+strings.Join(c.Ready, ","))
	}
	if !c.Scheduled.IsZero() {
		parts = append(parts, "s:"+strconv.FormatInt(c.Scheduled.UnixMicro(), 10))
	}
	if len(c.Changed) > 0 {
		parts = append(parts, "c:"+strings.Join(c.Changed, ","))
	}
	return strings.Join(parts, "|")
}

// note handles one notification: events wake the tailer; other nodes' ready
// work and schedules are passed on (this node's went on at commit).
func (t *tailer) note(payload string) {
	parts := strings.Split(payload, "|")
	remote := parts[0] != t.node
	c := &storage.Commit{}
	for _, p := range parts[1:] {
		switch {
		case p == "e":
		case strings.HasPrefix(p, "r:") && remote:
			c.Ready = strings.Split(p[2:], ",")
		case strings.HasPrefix(p, "c:") && remote:
			c.Changed = strings.Split(p[2:], ",")
		case strings.HasPrefix(p, "s:") && remote:
			if us, err := strconv.ParseInt(p[2:], 10, 64); err == nil {
				c.Scheduled = storage.FromMicros(us)
			}
		}
	}
	if !c.Empty() {
		t.mu.Lock()
		t.pending = append(t.pending, c)
		t.mu.Unlock()
	}
	t.wake()
}

// announce tells the other nodes about this node's commits: one NOTIFY, merging
// every commit since the last, outside any transaction. A crash between a
// commit and its announcement only delays the others until their next poll
// (tailers every second, long polls at their end).
func (t *tailer) announce(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.announceNow:
		}
		t.mu.Lock()
		c, events := t.out, t.outEvents
		t.out, t.outEvents = storage.Commit{}, false
		t.mu.Unlock()
		if c.Empty() && !events {
			continue
		}
		seq := int64(0)
		if events {
			seq = 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = t.s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, t.s.channel(), notePayload(&c, seq, t.node))
		cancel()
	}
}
