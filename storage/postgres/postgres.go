// Package postgres is errand's PostgreSQL storage driver, for several errand
// nodes on one database.
//
// Every WithTx is one PostgreSQL transaction on a pooled connection; concurrent
// commits share WAL flushes (PostgreSQL's own group commit). Rows a task claims
// (queued jobs, expired leases, due deliveries) are locked with FOR UPDATE SKIP
// LOCKED, so nodes never take the same row. Events get their cursor (seq) from
// an identity column when inserted; because transactions commit out of order,
// each node's tailer (tailer.go) reads the event log in seq order up to a
// horizon below which every seq has committed or never will, feeds its
// notifiers from there (this node's commits and every other node's, each once,
// in order), and readers never see past it. LISTEN/NOTIFY wakes the tailers and
// long-polling workers on every node at once.
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/sqlrow"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Config tunes the driver. The zero value is ready to use.
type Config struct {
	// MaxConns is the size of the connection pool. Defaults to 32.
	MaxConns int32
	// Writers is how many group-commit writers run transactions at once, each
	// holding a connection while it does; fewer than MaxConns. Defaults to 4
	// (fewer when the pool is smaller than 5).
	Writers int
	// Schema, when set, holds errand's tables (created if missing); tests use one
	// per test. Defaults to the connection's search_path (usually public).
	Schema string
	// Observer hears every transaction this node commits (its time, calls and
	// events) and every group that failed, for metrics. Defaults to none.
	Observer storage.Observer

	// tracer sees every statement sent (tests count round trips with it).
	tracer pgx.QueryTracer
}

var schemaRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.MaxConns = cmp.Or(out.MaxConns, 32)
	if out.Writers == 0 { // 4, leaving the pool a connection for everything else
		out.Writers = max(1, min(4, int(out.MaxConns)-1))
	}
	return out
}

// ParseURL reads a postgres:// (or postgresql://) URL; the errand-only query
// parameters pool_max_conns (handled by pgx), schema and writers (Config.Writers)
// are understood.
func ParseURL(raw string) (string, *Config, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("store %q: not a postgres:// URL", redact(raw))
	}
	cfg := &Config{}
	q := u.Query()
	if s := q.Get("schema"); s != "" {
		if !schemaRe.MatchString(s) {
			return "", nil, fmt.Errorf("store: schema %q must be a lower-case identifier", s)
		}
		cfg.Schema = s
		q.Del("schema")
	}
	if s := q.Get("pool_max_conns"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return "", nil, fmt.Errorf("store: pool_max_conns %q must be a positive number", s)
		}
		cfg.MaxConns = int32(n)
		q.Del("pool_max_conns")
	}
	if s := q.Get("writers"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 64 {
			return "", nil, fmt.Errorf("store: writers %q must be a number from 1 to 64", s)
		}
		cfg.Writers = n
		q.Del("writers")
	}
	u.RawQuery = q.Encode()
	return u.String(), cfg, nil
}

// redact hides a URL's password.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// Store is the PostgreSQL driver.
type Store struct {
	reader // reads committed state on the pool (ListEvents is its own)
	cfg    Config
	pool   *pgxpool.Pool
	dsn    string
	qSeqs  string // takes $1 event seqs from the events' sequence, named once at Open
	qHead  string // reads the highest seq handed out (LogHead)
	// swept is when this store last forgot full rate-limit buckets (µs).
	swept  atomic.Int64
	tail   *tailer
	reqs   chan *request
	urgent chan *request // storage.Urgent calls, grouped apart and taken first
	// lastUrgent is when the last urgent call came (Unix ns); normalRunning
	// how many writers run (or wait for) a group of the others (group.go).
	lastUrgent    atomic.Int64
	normalRunning atomic.Int32
	quit          chan struct{}
	notify        storage.Notifiers
	hooks         storage.Hooks
	space         storage.Space // whether writes are failing for want of disk space
}

var _ storage.Store = (*Store)(nil)

// reader is sqlrow's storage.Reader, embedded unexported.
type reader = sqlrow.Reader

// Open connects, applies migrations (under an advisory lock, so nodes starting
// together run them once) and starts the tailer.
func Open(ctx context.Context, dsn string, cfg *Config) (*Store, error) {
	c := cfg.withDefaults()
	if c.Schema != "" && !schemaRe.MatchString(c.Schema) {
		return nil, fmt.Errorf("postgres: schema %q must be a lower-case identifier", c.Schema)
	}
	if c.MaxConns > 1 && int32(c.Writers) >= c.MaxConns {
		return nil, fmt.Errorf("postgres: writers (%d) must be fewer than pool_max_conns (%d): reads, the tailer and the leader need connections too", c.Writers, c.MaxConns)
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", redact(dsn), err)
	}
	pc.MaxConns = c.MaxConns
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = 5 * time.Second // connect_timeout in the URL wins
	}
	if c.Schema != "" {
		pc.ConnConfig.RuntimeParams["search_path"] = c.Schema
	}
	if c.tracer != nil {
		pc.ConnConfig.Tracer = c.tracer
	}
	s := &Store{cfg: c, dsn: dsn, quit: make(chan struct{})}
	if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s.reader = sqlrow.Reader{DB: pool{s.pool}, Q: queries, Dialect: sqlrow.PostgreSQL, Interpret: interpretError}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, err
	}
	if err := s.nameSequence(ctx); err != nil {
		s.pool.Close()
		return nil, err
	}
	if s.tail, err = startTailer(ctx, s); err != nil {
		s.pool.Close()
		return nil, err
	}
	s.startWriters(c.Writers)
	return s, nil
}

// nameSequence writes the events' sequence into the statement that takes seqs,
// as a literal: PostgreSQL then resolves it once per plan, where a lookup by
// table and column would run for every seq taken.
func (s *Store) nameSequence(ctx context.Context) error {
	var name string
	if err := s.pool.QueryRow(ctx, `SELECT pg_get_serial_sequence('events', 'seq')`).Scan(&name); err != nil {
		return fmt.Errorf("postgres: the events sequence: %w", interpretError(err))
	}
	s.qSeqs = `SELECT nextval('` + strings.ReplaceAll(name, `'`, `''`) + `') FROM generate_series(1, $1)`
	s.qHead = `SELECT greatest((SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ` + name + `),
		(SELECT coalesce(max(seq), 0) FROM events))`
	return nil
}

// channel is the NOTIFY channel of this database (and schema).
func (s *Store) channel() string { return "errand_" + cmp.Or(s.cfg.Schema, "public") }

// lockKey is the advisory lock key of name in this store's schema: errands
// sharing a database in different schemas must not share locks (one would
// lead, migrate or count running jobs for the other).
func (s *Store) lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(cmp.Or(s.cfg.Schema, "public") + ":" + name))
	return int64(h.Sum64())
}

// Migrate applies pending migrations and returns how many ran; `errand migrate`
// calls it ahead of a rolling deploy.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := storage.ReadMigrations(mustSub(migrationFS, "migrations"))
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		// At start the reason is for the operator, so it is kept.
		return &errand.Error{Code: errand.EUNAVAILABLE, Message: "PostgreSQL does not answer: " + err.Error()}
	}
	defer conn.Release()
	if s.cfg.Schema != "" {
		if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s.cfg.Schema); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	lock := s.lockKey("migrate")
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lock); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS errand_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM errand_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("read migrations: %w", err)
	}
	for _, m := range ms[min(have, len(ms)):] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO errand_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	if have > len(ms) {
		return fmt.Errorf("the database is at migration %d, newer than this errand (%d): upgrade errand", have, len(ms))
	}
	return nil
}

func mustSub(fsys embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	return sub
}

// Hook registers h to run in the transaction of every event appended.
func (s *Store) Hook(h storage.EventHook) { s.hooks.Hook(h) }

// Listen registers n to hear about every commit, in commit order.
func (s *Store) Listen(n storage.Notifier) { s.notify.Listen(n) }

// WithTx runs fn in a transaction and commits it: grouped with the calls
// waiting beside it (group.go), or alone. fn runs again, alone, when its
// group failed or one of its statements did (see storage.Store.WithTx), and
// after a serialization failure, a deadlock or a race on an idempotency key
// (up to five runs alone). Its events reach the notifiers shortly after, in
// order, through the tailer.
func (s *Store) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	_, err := s.submit(ctx, fn)
	return s.space.Observe(err)
}

func (s *Store) runTx(ctx context.Context, t *txn, fn func(storage.Tx) error) error {
	// A caller's cancel must not interrupt a transaction that may be committing:
	// once begun, it finishes on its own context (bounded by a statement timeout).
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	actx, acancel := context.WithTimeout(ctx, 10*time.Second) // a database that went away answers 503, not never
	conn, err := s.pool.Acquire(actx)
	acancel()
	if err != nil {
		return unavailable(err)
	}
	defer conn.Release()
	t.begin(conn.Conn())
	t.ctx, t.began = tctx, time.Now()
	if err := run(fn, t); err != nil {
		t.rollback()
		return err
	}
	// No NOTIFY inside: PostgreSQL serializes the commits of notifying
	// transactions (a global lock held through the WAL flush), which capped
	// throughput at one commit per fsync. The tailer announces commits after
	// the fact, merged (see tailer.announce).
	if err := t.commit(); err != nil {
		t.rollback()
		return err
	}
	return nil
}

// run calls fn, turning a panic into an error.
func run(fn func(storage.Tx) error, t *txn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in transaction: %v", p)
		}
	}()
	return fn(t)
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "40001" || pe.Code == "40P01" || (pe.Code == "23505" && (pe.ConstraintName == "jobs_idempotency" || pe.ConstraintName == "job_unique_key"))
}

// unavailable marks a failure to reach the database: clients get 503.
func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &errand.Error{Code: errand.EUNAVAILABLE, Message: "the database is unavailable", RetryAfter: time.Second}
}

// interpretError maps pgx errors to the seam's: no rows is ErrNotFound; a
// connection that failed or broke is unavailable (503), whatever was being done;
// the server out of disk, memory or connections (class 53: 53100 disk_full) is
// storage_full; text PostgreSQL cannot hold (22021 a NUL or bytes that are not
// UTF-8, 22P05 a character the database's encoding lacks) is the client's
// invalid input, a backstop behind the API's own checks.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	var ae *errand.Error
	if errors.As(err, &ae) {
		return err // the domain's own answer
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "conn closed") {
		return unavailable(err)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || strings.HasPrefix(pe.Code, "08"):
		return unavailable(err) // the server is shutting down, restarting, or the connection failed
	case pe.Code == "53100" || pe.Code == "53000":
		return storage.Full() // disk_full, insufficient_resources
	case strings.HasPrefix(pe.Code, "53"):
		return unavailable(err) // out of memory (53200) or connections (53300): the server is struggling, not full
	case pe.Code == "22021" || pe.Code == "22P05":
		return errand.Errorf(errand.EVALIDATION, "the request holds text the store cannot keep (a NUL character or bytes that are not UTF-8)")
	}
	return err
}

// Setting returns the stored value of key, storing value first if there is
// none (one statement: see sqlrow's Setting).
func (s *Store) Setting(ctx context.Context, key, value string) (string, error) {
	var out string
	err := s.pool.QueryRow(ctx, queries.Setting, key, value).Scan(&out)
	return out, interpretError(err)
}

// Ping reports whether the database answers and whether writes are failing
// for want of disk space (storage_full while they are).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return unavailable(err)
	}
	return s.space.Check(ctx, s)
}

// Close stops the tailer and closes the pool.
func (s *Store) Close() error {
	close(s.quit)
	s.tail.stop()
	s.pool.Close()
	return nil
}

// Stats are the pool's and the tailer's gauges now (for metrics).
func (s *Store) Stats() storage.Stats {
	st := s.pool.Stat()
	return storage.Stats{
		Pool: &storage.PoolStats{Acquired: st.AcquiredConns(), Idle: st.IdleConns(), Total: st.TotalConns(),
			Max: st.MaxConns(), Acquires: st.AcquireCount(), Waited: st.EmptyAcquireCount(), WaitTime: st.AcquireDuration()},
		Tailer: s.tail.stats(),
	}
}

// SchemaVersion is the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM errand_migrations`).Scan(&v)
	return v, interpretError(err)
}
