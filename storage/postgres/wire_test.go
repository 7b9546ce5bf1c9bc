package postgres_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

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
