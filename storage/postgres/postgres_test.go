package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/postgres"
	"github.com/errandhq/errand/storage/storagetest"
	"github.com/jackc/pgx/v5"
)

// testURL, newSchema and openSchema are the shared test store's: the
// PostgreSQL of ERRAND_TEST_POSTGRES (or the machine's own), required under
// CI=true; a schema per test.
func testURL(t *testing.T) string { return teststore.PostgresURL(t) }

func newSchema(t *testing.T, u string) string { return teststore.NewSchema(t, u) }

func openSchema(t *testing.T, u, schema string) *postgres.Store {
	return teststore.OpenSchema(t, u, schema)
}

func TestConformance(t *testing.T) {
	storagetest.Exercise(t, func(t *testing.T) storage.Store { return teststore.OpenPostgres(t) })
}

func TestObserver(t *testing.T) {
	storagetest.Observe(t, func(t *testing.T, o storage.Observer) storage.Store {
		u := teststore.PostgresURL(t)
		s, err := postgres.Open(context.Background(), u, &postgres.Config{Schema: teststore.NewSchema(t, u), MaxConns: 8, Observer: o})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestSkipLocked: a claim skips the rows another open transaction claimed.
func TestSkipLocked(t *testing.T) {
	storagetest.SkipLocked(t, func(t *testing.T) storage.Store { return teststore.OpenPostgres(t) })
}

// TestNodesSeeEveryEventInOrder: two nodes on one database commit events
// concurrently, some transactions rolling back (gaps in seq); each node's
// notifiers hear every committed event exactly once, in seq order, and a reader
// resuming from any cursor misses nothing.
func TestNodesSeeEveryEventInOrder(t *testing.T) {
	u := testURL(t)
	schema := newSchema(t, u)
	a, b := openSchema(t, u, schema), openSchema(t, u, schema)
	ra, rb := &storagetest.Recorder{}, &storagetest.Recorder{}
	a.Listen(ra)
	b.Listen(rb)
	ctx := context.Background()
	errRollback := errors.New("roll back")
	var wg sync.WaitGroup
	var mu sync.Mutex
	committed := map[int64]bool{}
	data := map[int64]string{}
	for g := range 48 { // more callers than writers: calls run in groups
		node := []*postgres.Store{a, b}[g%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				var e *errand.Event
				err := node.WithTx(ctx, func(tx storage.Tx) error {
					e = &errand.Event{Stream: "orders", Tenant: "acme", Type: "x", Time: time.Now(),
						Data: fmt.Appendf(nil, `{"g":%d,"i":%d}`, g, i)}
					if err := tx.InsertEvent(e); err != nil {
						return err
					}
					if i%7 == 3 {
						// A read sends the event (it takes a seq), then the transaction rolls back: a gap.
						if _, err := tx.GetSetting("nothing"); err != storage.ErrNotFound {
							return fmt.Errorf("GetSetting: %v", err)
						}
						return errRollback
					}
					return nil
				})
				if err == nil {
					mu.Lock()
					committed[e.Seq] = true
					data[e.Seq] = string(e.Data)
					mu.Unlock()
				} else if err != errRollback {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for name, r := range map[string]*storagetest.Recorder{"a": ra, "b": rb} {
		deadline := time.Now().Add(60 * time.Second) // a loaded CI machine: returns as soon as caught up
		var evs []*errand.Event
		for {
			evs = r.Events()
			if len(evs) >= len(committed) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		seen := map[int64]bool{}
		for i, e := range evs {
			if i > 0 && e.Seq <= evs[i-1].Seq {
				t.Fatalf("node %s heard seq %d after %d", name, e.Seq, evs[i-1].Seq)
			}
			if !committed[e.Seq] {
				t.Fatalf("node %s heard seq %d, which did not commit", name, e.Seq)
			}
			if string(e.Data) != data[e.Seq] || e.Stream != "orders" || e.Type != "x" {
				t.Fatalf("node %s heard seq %d as %s %s %s, committed as %s", name, e.Seq, e.Stream, e.Type, e.Data, data[e.Seq])
			}
			seen[e.Seq] = true
		}
		for seq := range committed {
			if !seen[seq] {
				t.Logf("node %s missed %d", name, seq)
			}
		}
		if len(seen) != len(committed) {
			t.Fatalf("node %s heard %d events, %d committed", name, len(seen), len(committed))
		}
	}
	page, err := b.ListEvents(ctx, storage.ListEventsParams{Tenant: "acme", Stream: "orders", Limit: 10000})
	if err != nil || len(page) != len(committed) {
		t.Fatalf("history on node b: %d events (%v), want %d", len(page), err, len(committed))
	}
	// Once a later event passes them, neither node holds on to any event: not
	// its own committed ones, nor those it sent in transactions that rolled back.
	var last *errand.Event
	if err := a.WithTx(ctx, func(tx storage.Tx) error {
		last = &errand.Event{Stream: "orders", Tenant: "acme", Type: "x", Time: time.Now(), Data: []byte(`{}`)}
		return tx.InsertEvent(last)
	}); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*postgres.Store{"a": a, "b": b} {
		r := map[string]*storagetest.Recorder{"a": ra, "b": rb}[name]
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			evs := r.Events()
			if len(evs) > 0 && evs[len(evs)-1].Seq == last.Seq {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s did not hear the last event", name)
			}
		}
		if n := postgres.HeldEvents(s); n != 0 {
			t.Fatalf("node %s still holds %d events", name, n)
		}
	}
}

// TestHistoryHasNoHoles: while writers on two nodes commit (and roll back)
// events, every page a reader gets is whole: no committed event is missing
// below the last one it holds.
func TestHistoryHasNoHoles(t *testing.T) {
	u := testURL(t)
	schema := newSchema(t, u)
	a, b := openSchema(t, u, schema), openSchema(t, u, schema)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	committed := map[int64]bool{}
	var wg sync.WaitGroup
	for g := range 24 {
		node := []*postgres.Store{a, b}[g%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 120 && ctx.Err() == nil; i++ {
				var e *errand.Event
				err := node.WithTx(ctx, func(tx storage.Tx) error {
					e = &errand.Event{Stream: "s", Tenant: "t", Type: "x", Time: time.Now(), Data: []byte(`{}`)}
					if err := tx.InsertEvent(e); err != nil {
						return err
					}
					if i%5 == 2 {
						tx.GetSetting("none")
						return errors.New("roll back")
					}
					return nil
				})
				if err == nil {
					mu.Lock()
					committed[e.Seq] = true
					mu.Unlock()
				}
			}
		}()
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()
	var pages [][]int64
	for reading := true; reading; {
		select {
		case <-writing:
			reading = false
		default:
		}
		evs, err := b.ListEvents(ctx, storage.ListEventsParams{Tenant: "t", Stream: "s", Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, e := range evs {
			seqs = append(seqs, e.Seq)
		}
		pages = append(pages, seqs)
	}
	for _, p := range pages {
		if len(p) == 0 {
			continue
		}
		have := map[int64]bool{}
		for _, s := range p {
			have[s] = true
		}
		for s := range committed {
			if s < p[len(p)-1] && !have[s] {
				t.Fatalf("a page ending at %d lacks committed event %d", p[len(p)-1], s)
			}
		}
	}
}

// TestUpgrade0008: owners stored before migration 0008 keep their identities.
func TestUpgrade0008(t *testing.T) {
	u := testURL(t)
	schema := newSchema(t, u)
	open := func() storage.Store {
		s, err := postgres.Open(context.Background(), u, &postgres.Config{Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}
	storagetest.Upgrade0008(t, open, func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		// What the migrations after 0008 made goes too, so that they run again.
		for _, q := range []string{"DROP TABLE " + schema + ".job_unique", "DROP TABLE " + schema + ".rate_limits",
			"ALTER TABLE " + schema + ".jobs DROP COLUMN queue_key", // and its indexes
			"DROP INDEX " + schema + ".jobs_started",
			"DROP INDEX " + schema + ".jobs_queued_tenant", "DROP TABLE " + schema + ".usage",
			"ALTER TABLE " + schema + ".jobs DROP COLUMN trace_parent",
			"ALTER TABLE " + schema + ".webhook_deliveries DROP COLUMN trace_parent",
			"ALTER TABLE " + schema + ".jobs DROP COLUMN concurrency_key", "ALTER TABLE " + schema + ".jobs DROP COLUMN fair_key",
			"DROP TABLE " + schema + ".operation_flow",
			"DELETE FROM " + schema + ".errand_migrations WHERE version >= 8"} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("rewind: %s: %v", q, err)
			}
		}
	})
}

// TestLeaderPerSchema: errands on one database in different schemas each
// elect their own leader (a lock shared across schemas let one deployment's
// node lead for every other's, whose maintenance then never ran); two nodes
// of one schema elect one.
func TestLeaderPerSchema(t *testing.T) {
	u := testURL(t)
	schema := newSchema(t, u)
	a, b, other := openSchema(t, u, schema), openSchema(t, u, schema), openSchema(t, u, newSchema(t, u))
	log := slog.New(slog.DiscardHandler)
	var leaders []*postgres.Leader
	for _, s := range []*postgres.Store{a, b, other} {
		l := s.Leader(&postgres.LeaderConfig{Retry: 50 * time.Millisecond, Log: log})
		l.Start(context.Background())
		t.Cleanup(func() { l.Stop(context.Background()) })
		leaders = append(leaders, l)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !(leaders[0].IsLeader() || leaders[1].IsLeader()) || !leaders[2].IsLeader() {
		if time.Now().After(deadline) {
			t.Fatalf("leaders after 10s: schema 1 %v %v, schema 2 %v; want one in each schema",
				leaders[0].IsLeader(), leaders[1].IsLeader(), leaders[2].IsLeader())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if leaders[0].IsLeader() && leaders[1].IsLeader() {
		t.Fatalf("both nodes of one schema lead")
	}
}

// TestLeaderPerName: each name elects its own leader (a bridge's routes lead
// apart from maintenance and from each other), and when a name's leader stops
// the other node takes that name over.
func TestLeaderPerName(t *testing.T) {
	u := testURL(t)
	schema := newSchema(t, u)
	a, b := openSchema(t, u, schema), openSchema(t, u, schema)
	log := slog.New(slog.DiscardHandler)
	elect := func(s *postgres.Store, name string) *postgres.Leader {
		l := s.Leader(&postgres.LeaderConfig{Name: name, Retry: 50 * time.Millisecond, Log: log})
		l.Start(context.Background())
		t.Cleanup(func() { l.Stop(context.Background()) })
		return l
	}
	main, route := elect(a, ""), elect(a, "bridge:x/publish/0")
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 10s: %s", what)
			}
		}
	}
	waitFor("node a leads both names", func() bool { return main.IsLeader() && route.IsLeader() })
	other := elect(b, "bridge:x/publish/0")
	time.Sleep(200 * time.Millisecond)
	if other.IsLeader() {
		t.Fatalf("node b leads a route node a leads")
	}
	route.Stop(context.Background())
	waitFor("node b takes over the route", other.IsLeader)
	if !main.IsLeader() {
		t.Fatalf("node a lost the maintenance lead when its route's leader stopped")
	}
}
