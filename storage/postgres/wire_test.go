package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/postgres"
	"github.com/errandhq/errand/storage/storagetest"
	"github.com/jackc/pgx/v5"
)

// sends counts the queries, batches and COPYs sent under a context marked
// with countedKey: each is one round trip (once its statements are prepared).
type sends struct{ n atomic.Int64 }

type countedKey struct{}

func (s *sends) count(ctx context.Context) context.Context {
	if ctx.Value(countedKey{}) != nil {
		s.n.Add(1)
	}
	return ctx
}

func (s *sends) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return s.count(ctx)
}
func (s *sends) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (s *sends) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return s.count(ctx)
}
func (s *sends) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (s *sends) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}
func (s *sends) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return s.count(ctx)
}
func (s *sends) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

// TestRoundTrips: BEGIN, SAVEPOINT and RELEASE go with the next statement and
// COMMIT with the last writes, so a one-job completion (read and lock the
// job, write it and its event) is two round trips, a submit one, and what
// they wrote is there; before, each was two more (BEGIN and COMMIT alone).
func TestRoundTrips(t *testing.T) {
	u := teststore.PostgresURL(t)
	tr := &sends{}
	s, err := postgres.Open(context.Background(), u, postgres.Traced(postgres.Config{Schema: teststore.NewSchema(t, u), MaxConns: 4}, tr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	counted := context.WithValue(context.Background(), countedKey{}, true)
	trips := func(t *testing.T, fn func(storage.Tx) error) int64 {
		t.Helper()
		before := tr.n.Load()
		if err := s.WithTx(counted, fn); err != nil {
			t.Fatal(err)
		}
		return tr.n.Load() - before
	}
	submit := func(id string) func(storage.Tx) error {
		return func(tx storage.Tx) error {
			if err := tx.InsertJob(storagetest.Job(id)); err != nil {
				return err
			}
			return tx.InsertEvent(storagetest.Event("job:"+id, `{"status":"queued"}`))
		}
	}
	complete := func(id string) func(storage.Tx) error {
		return func(tx storage.Tx) error {
			j, err := tx.GetJob(id)
			if err != nil {
				return err
			}
			j.Status, j.Result = errand.StatusSucceeded, []byte(`{"ok":true}`)
			if err := tx.UpdateJob(j); err != nil {
				return err
			}
			return tx.InsertEvent(storagetest.Event("job:"+id, `{"status":"succeeded"}`))
		}
	}
	// Once each first, so that every statement is prepared on the connection.
	for _, id := range []string{"warm1", "warm2", "warm3", "warm4"} {
		trips(t, submit(id))
		trips(t, complete(id))
	}
	if n := trips(t, submit("j1")); n != 1 {
		t.Errorf("a submit took %d round trips; want 1 (BEGIN, the writes and COMMIT in one batch)", n)
	}
	if n := trips(t, complete("j1")); n != 2 {
		t.Errorf("a completion took %d round trips; want 2 (BEGIN with the read, the writes with COMMIT)", n)
	}
	j, err := s.GetJob(context.Background(), "acme", "j1")
	if err != nil || j.Status != errand.StatusSucceeded || string(j.Result) != `{"ok":true}` {
		t.Fatalf("after the completion: %+v, %v; want succeeded with its result", j, err)
	}
	evs, err := s.ListEvents(context.Background(), storage.ListEventsParams{Tenant: "acme", Stream: "job:j1", Limit: 10})
	if err != nil || len(evs) != 2 {
		t.Fatalf("events of job:j1: %d, %v; want queued and succeeded", len(evs), err)
	}
}

// TestCommitBesideRefusedWrite: a write the database refuses in the batch
// that carries the COMMIT (a duplicate job id) skips the COMMIT: the call
// fails and nothing it wrote is kept, its event included.
func TestCommitBesideRefusedWrite(t *testing.T) {
	s := teststore.OpenPostgres(t)
	ctx := context.Background()
	if err := s.WithTx(ctx, func(tx storage.Tx) error { return tx.InsertJob(storagetest.Job("dup")) }); err != nil {
		t.Fatal(err)
	}
	err := s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.InsertEvent(storagetest.Event("orphan", `{"n":1}`)); err != nil {
			return err
		}
		return tx.InsertJob(storagetest.Job("dup"))
	})
	if err == nil {
		t.Fatal("inserting a job id twice succeeded; want the database's refusal")
	}
	var e *errand.Error
	if errors.As(err, &e) && e.Code == errand.EUNAVAILABLE {
		t.Fatalf("a refused write answered %v; want a plain failure (the outcome is known)", err)
	}
	evs, err := s.ListEvents(ctx, storage.ListEventsParams{Tenant: "acme", Stream: "orphan", Limit: 10})
	if err != nil || len(evs) != 0 {
		t.Fatalf("events of the failed call: %d, %v; want none", len(evs), err)
	}
	// The connection is usable again: the next call commits.
	if err := s.WithTx(ctx, func(tx storage.Tx) error { return tx.InsertJob(storagetest.Job("next")) }); err != nil {
		t.Fatalf("the call after: %v", err)
	}
}

// TestParseURL: the errand-only parameters are read and taken off the URL;
// bad values are refused with what is wrong.
func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		in, dsn string
		writers int
		schema  string
		ok      bool
	}{
		{"postgres://h/db?schema=errand&writers=2&sslmode=disable", "postgres://h/db?sslmode=disable", 2, "errand", true},
		{"postgresql://h/db", "postgresql://h/db", 0, "", true},
		{"postgres://h/db?writers=0", "", 0, "", false},
		{"postgres://h/db?writers=65", "", 0, "", false},
		{"postgres://h/db?writers=two", "", 0, "", false},
		{"postgres://h/db?schema=Bad-Name", "", 0, "", false},
		{"mysql://h/db", "", 0, "", false},
	} {
		dsn, cfg, err := postgres.ParseURL(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseURL(%q) err = %v; want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && (dsn != tt.dsn || cfg.Writers != tt.writers || cfg.Schema != tt.schema) {
			t.Errorf("ParseURL(%q) = %q, writers %d, schema %q; want %q, %d, %q", tt.in, dsn, cfg.Writers, cfg.Schema, tt.dsn, tt.writers, tt.schema)
		}
	}
}

// TestGroupRefusalBesideCommit: in a group whose last batch carries the
// COMMIT, one call's event the database refuses (a NUL in text) fails that
// call alone: the group is rolled back (the COMMIT was skipped, which the
// connection's state says) and the other calls run again and commit.
func TestGroupRefusalBesideCommit(t *testing.T) {
	s := teststore.OpenPostgres(t)
	call := func(id, stream string) func(storage.Tx) error {
		return func(tx storage.Tx) error {
			if err := tx.InsertJob(storagetest.Job(id)); err != nil {
				return err
			}
			return tx.InsertEvent(storagetest.Event(stream, `{"n":1}`))
		}
	}
	errs := postgres.RunGroup(s, call("g0", "s0"), call("g1", "s1"), call("g2", "bad\x00stream"), call("g3", "s3"))
	for i, err := range errs {
		if (err != nil) != (i == 2) {
			t.Errorf("call %d: %v; want only call 2 (its NUL) to fail", i, err)
		}
	}
	var e *errand.Error
	if errors.As(errs[2], &e) && e.Code == errand.EUNAVAILABLE {
		t.Errorf("the refused call answered %v; want its own refusal, not 503", errs[2])
	}
	for _, id := range []string{"g0", "g1", "g3"} {
		if _, err := s.GetJob(context.Background(), "acme", id); err != nil {
			t.Errorf("job %s of a call that succeeded: %v", id, err)
		}
	}
	if _, err := s.GetJob(context.Background(), "acme", "g2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("job g2 of the refused call: %v; want not found", err)
	}
}

// TestDeleteThenUpdateBesideCommit: a job deleted and then updated in one
// call is not there to update: the call answers not found and its delete is
// not kept (the COMMIT does not ride beside an update that can find no row).
func TestDeleteThenUpdateBesideCommit(t *testing.T) {
	s := teststore.OpenPostgres(t)
	ctx := context.Background()
	if err := s.WithTx(ctx, func(tx storage.Tx) error { return tx.InsertJob(storagetest.Job("x")) }); err != nil {
		t.Fatal(err)
	}
	err := s.WithTx(ctx, func(tx storage.Tx) error {
		j, err := tx.GetJob("x")
		if err != nil {
			return err
		}
		if err := tx.DeleteJob("x"); err != nil {
			return err
		}
		j.Status = errand.StatusSucceeded
		return tx.UpdateJob(j)
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("delete then update: %v; want ErrNotFound", err)
	}
	if _, err := s.GetJob(ctx, "acme", "x"); err != nil {
		t.Fatalf("after the failed call the job is gone (%v); want it kept", err)
	}
}

// TestOthersRunBesideUrgentCalls: while urgent calls keep coming, the other
// calls still run (one writer at a time gives them groups) and all finish.
func TestOthersRunBesideUrgentCalls(t *testing.T) {
	s := teststore.OpenPostgres(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	urgentDone := make(chan struct{})
	go func() {
		defer close(urgentDone)
		for n := 0; ctx.Err() == nil; n++ {
			_ = s.WithTx(storage.Urgent(context.Background()), func(tx storage.Tx) error {
				return tx.InsertEvent(storagetest.Event("urgent", `{"n":1}`))
			})
		}
	}()
	finished := make(chan error, 64)
	for g := range 8 {
		go func() {
			for k := range 8 {
				finished <- s.WithTx(context.Background(), func(tx storage.Tx) error {
					return tx.InsertJob(storagetest.Job(fmt.Sprintf("o%d_%d", g, k)))
				})
			}
		}()
	}
	deadline := time.After(30 * time.Second)
	for range 64 {
		select {
		case err := <-finished:
			if err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatal("calls that are not urgent did not all finish beside a stream of urgent ones in 30 s")
		}
	}
	stop()
	<-urgentDone
}

// TestWritersBelowPool: writers that would take every connection of the pool
// are refused at Open with what to change; a small pool alone gets fewer
// writers by default and works.
func TestWritersBelowPool(t *testing.T) {
	u := teststore.PostgresURL(t)
	_, err := postgres.Open(context.Background(), u, &postgres.Config{Schema: teststore.NewSchema(t, u), MaxConns: 4, Writers: 4})
	if err == nil || !strings.Contains(err.Error(), "pool_max_conns") {
		t.Fatalf("writers=4 on a pool of 4: %v; want a refusal naming pool_max_conns", err)
	}
	s, err := postgres.Open(context.Background(), u, &postgres.Config{Schema: teststore.NewSchema(t, u), MaxConns: 2})
	if err != nil {
		t.Fatalf("a pool of 2 with the default writers: %v", err)
	}
	defer s.Close()
	if err := s.WithTx(context.Background(), func(tx storage.Tx) error { return tx.InsertJob(storagetest.Job("small")) }); err != nil {
		t.Fatal(err)
	}
}
