// Package teststore opens real stores for the tests of the packages above the
// storage seam (job, queue, webhook, auth, audit, channel, event, …): SQLite
// in a test's temporary directory, and PostgreSQL in a schema of the test's
// own when the server answers.
//
//	func TestSubmit(t *testing.T) {
//		teststore.Each(t, func(t *testing.T, s storage.Store) { … })
//	}
//
// The PostgreSQL is ERRAND_TEST_POSTGRES, or the machine's own server
// (postgres://postgres@127.0.0.1:5432/test). When it does not answer, its
// tests are skipped, except under CI=true, where that is a failure.
package teststore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/postgres"
	"github.com/errandhq/errand/storage/sqlite"
	"github.com/jackc/pgx/v5"
)

// DefaultPostgres is the PostgreSQL the tests use unless ERRAND_TEST_POSTGRES
// names another.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Open returns a new, empty SQLite store in t's temporary directory, closed
// when the test ends.
func Open(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "errand.db"), nil)
	if err != nil {
		t.Fatalf("open SQLite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// OpenPostgres returns a new, empty PostgreSQL store in a schema of its own
// (dropped when the test ends), or skips the test when PostgreSQL does not
// answer (fails it under CI=true).
func OpenPostgres(t testing.TB) *postgres.Store {
	t.Helper()
	u := PostgresURL(t)
	return OpenSchema(t, u, NewSchema(t, u))
}

// Each runs test as two parallel subtests, "sqlite" and "postgres", each with
// a new, empty store; the second is skipped when PostgreSQL does not answer
// (failed under CI=true).
func Each(t *testing.T, test func(t *testing.T, s storage.Store)) {
	t.Helper()
	EachOpen(t, func(t *testing.T, open func(testing.TB) storage.Store) { test(t, open(t)) })
}

// EachOpen is Each for tests that open more than one store (or open it later):
// open returns a new, empty store of the subtest's driver each time.
func EachOpen(t *testing.T, test func(t *testing.T, open func(testing.TB) storage.Store)) {
	t.Helper()
	drivers := []struct {
		name string
		open func(testing.TB) storage.Store
	}{
		{"sqlite", func(t testing.TB) storage.Store { return Open(t) }},
		{"postgres", func(t testing.TB) storage.Store { return OpenPostgres(t) }},
	}
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			test(t, d.open)
		})
	}
}

// reach remembers, per URL, whether PostgreSQL answered: asked once per test
// binary, not once per test.
var reach sync.Map // url → answer

// PostgresURL returns the URL of the test PostgreSQL: ERRAND_TEST_POSTGRES or
// DefaultPostgres. It skips the test when the server does not answer, or
// fails it under CI=true.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("ERRAND_TEST_POSTGRES")
	if u == "" {
		u = DefaultPostgres
	}
	v, ok := reach.Load(u)
	if !ok {
		v, _ = reach.LoadOrStore(u, answer{ping(u)})
	}
	if err := v.(answer).err; err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s does not answer: %v", u, err)
		}
		t.Skipf("PostgreSQL at %s does not answer (set ERRAND_TEST_POSTGRES): %v", u, err)
	}
	return u
}

// answer is whether a PostgreSQL answered: nil, or why not.
type answer struct{ err error }

// ping connects to u once.
func ping(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// NewSchema returns the name of a new schema for one test, dropped (with all
// it holds) when the test ends. The store creates it when it opens.
func NewSchema(t testing.TB, u string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := pgx.Connect(ctx, u); err == nil {
			conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(ctx)
		}
	})
	return schema
}

// OpenSchema opens a store on u in schema (a node: several may share one
// schema), closed when the test ends.
func OpenSchema(t testing.TB, u, schema string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), u, &postgres.Config{Schema: schema, MaxConns: 8})
	if err != nil {
		t.Fatalf("open PostgreSQL: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Clock is a settable clock for tests. The zero value is not ready: use NewClock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at 2026-11-01 12:00:00 UTC.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
