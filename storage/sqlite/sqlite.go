// Package sqlite is errand's embedded storage driver: one SQLite file in WAL mode.
//
// Every write goes through one writer goroutine. It takes all the transactions that
// are waiting, runs each in a savepoint of one SQLite transaction and commits them
// with one fsync (group commit): a caller returns only after its work is on disk,
// and throughput grows with concurrency instead of being capped by the fsync rate.
// Reads use separate pools of read-only connections: one for point reads (a job,
// a stream's events), one for list scans, so that slow lists never make point
// reads wait for a connection.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/sqlrow"
	"modernc.org/sqlite" // and the database/sql driver "sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Config tunes the driver. The zero value is ready to use.
type Config struct {
	// Synchronous is SQLite's synchronous setting: "full" (every commit fsynced, the
	// default), "normal" (WAL may lose the last commits on power loss, never on a
	// process crash) or "off" (benchmarks only).
	Synchronous string
	// ReadConns is the size of the pool for point reads (a job by id, a
	// stream's events, settings). Defaults to 4.
	ReadConns int
	// ScanConns is the size of the pool for lists (jobs, deliveries), whose
	// cost grows with the table: however many run at once, they wait for these
	// and never for the point reads' connections. Defaults to 2.
	ScanConns int
	// MaxBatch is the most transactions grouped into one commit. Defaults to 1024.
	MaxBatch int
	// Log hears the warning Open gives when the database's files are open to
	// other users. Defaults to slog.Default().
	Log *slog.Logger
	// Observer hears every group commit (its time, calls and events) and
	// every failed one, for metrics. Defaults to none.
	Observer storage.Observer
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.Synchronous = strings.ToLower(cmp.Or(out.Synchronous, "full"))
	out.ReadConns = cmp.Or(out.ReadConns, 4)
	out.ScanConns = cmp.Or(out.ScanConns, 2)
	out.MaxBatch = cmp.Or(out.MaxBatch, 1024)
	if out.Log == nil {
		out.Log = slog.Default()
	}
	return out
}

func (c *Config) validate() error {
	switch c.Synchronous {
	case "full", "normal", "off":
	default:
		return fmt.Errorf("synchronous must be full, normal or off, not %q", c.Synchronous)
	}
	if c.ReadConns < 1 || c.ScanConns < 1 || c.MaxBatch < 1 {
		return errors.New("read_conns, scan_conns and max_batch must be positive")
	}
	return nil
}

// Store is the SQLite driver.
type Store struct {
	reader // reads committed state on the read pool
	cfg    Config
	path   string
	wdb    *sql.DB
	rdb    *sql.DB // point reads
	sdb    *sql.DB // list scans
	w      *writer
	read   readStmts
	scan   sqlrow.Reader // lists, on the scan pool
	notify storage.Notifiers
	hooks  storage.Hooks
	space  storage.Space // whether writes are failing for want of disk space
	// buckets are the rate limits' (one node: the process holds them exactly).
	buckets storage.Buckets
}

var _ storage.Store = (*Store)(nil)

// reader is sqlrow's storage.Reader, embedded unexported.
type reader = sqlrow.Reader

// ParseURL reads a store URL of the form sqlite://path/to/file.db?synchronous=full
// (or sqlite:path) into a path and a Config.
func ParseURL(raw string) (string, *Config, error) {
	rest, ok := strings.CutPrefix(raw, "sqlite:")
	if !ok {
		return "", nil, fmt.Errorf("store %q: not a sqlite: URL", raw)
	}
	rest = strings.TrimPrefix(rest, "//")
	p, query, _ := strings.Cut(rest, "?")
	if p == "" {
		return "", nil, fmt.Errorf("store %q: no file path", raw)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", nil, fmt.Errorf("store %q: %w", raw, err)
	}
	cfg := &Config{Synchronous: q.Get("synchronous")}
	for k := range q {
		if k != "synchronous" {
			return "", nil, fmt.Errorf("store %q: unknown parameter %q", raw, k)
		}
	}
	return p, cfg, nil
}

// Open opens (creating if needed) the database at path, applies migrations and
// starts the writer. The database holds secrets (webhook secrets, errand's
// OAuth signing keys): a new one is made readable by errand's user only (0600,
// in a directory made 0700; SQLite gives the -wal and -shm files the
// database's mode), and an existing one open to other users is warned about.
func Open(ctx context.Context, path string, cfg *Config) (*Store, error) {
	c := cfg.withDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("sqlite config: %w", err)
	}
	if err := create(path); err != nil {
		return nil, err
	}
	s := &Store{cfg: c, path: path}
	s.reader = sqlrow.Reader{DB: readDB{s}, Q: queries, Dialect: sqlrow.SQLite, Interpret: interpretError}
	s.scan = sqlrow.Reader{DB: scanDB{s}, Q: queries, Dialect: sqlrow.SQLite, Interpret: interpretError}
	if err := s.open(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	warnOpenFiles(c.Log, path)
	return s, nil
}

// create makes the data directory (0700) and an empty database file (0600)
// unless they exist: SQLite would create the file 0644.
func create(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}

// warnOpenFiles logs a warning for each of the database's files that users
// other than its owner may read or write.
func warnOpenFiles(log *slog.Logger, path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm()&0o077 == 0 {
			continue
		}
		log.Warn("the store's file is open to other users; it holds webhook secrets and signing keys: chmod 600 it",
			"file", p, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
	}
}

func (s *Store) open(ctx context.Context) error {
	base := "file:" + s.path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(" + s.cfg.Synchronous + ")&_pragma=temp_store(MEMORY)"
	var err error
	if s.wdb, err = sql.Open("sqlite", base); err != nil {
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if s.rdb, err = sql.Open("sqlite", base+"&_pragma=query_only(1)"); err != nil {
		return fmt.Errorf("open %s for reading: %w", s.path, err)
	}
	s.rdb.SetMaxOpenConns(s.cfg.ReadConns)
	s.rdb.SetMaxIdleConns(s.cfg.ReadConns)
	if s.sdb, err = sql.Open("sqlite", base+"&_pragma=query_only(1)"); err != nil {
		return fmt.Errorf("open %s for lists: %w", s.path, err)
	}
	s.sdb.SetMaxOpenConns(s.cfg.ScanConns)
	s.sdb.SetMaxIdleConns(s.cfg.ScanConns)
	if err := s.read.prepare(ctx, s.rdb); err != nil {
		return err
	}
	s.w, err = startWriter(ctx, s)
	return err
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := storage.ReadMigrations(mustSub(migrationFS, "migrations"))
	if err != nil {
		return err
	}
	if _, err := s.wdb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS errand_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	var have int
	if err := s.wdb.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM errand_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this errand (%d): upgrade errand", have, len(ms))
	}
	for _, m := range ms[have:] {
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

func (s *Store) apply(ctx context.Context, m storage.Migration) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO errand_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}

// Hook registers h to run in the transaction of every event appended.
func (s *Store) Hook(h storage.EventHook) { s.hooks.Hook(h) }

// Listen registers n to hear about every commit, in commit order.
func (s *Store) Listen(n storage.Notifier) { s.notify.Listen(n) }

// WithTx runs fn in the next group commit.
func (s *Store) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	return s.w.do(ctx, fn)
}

// Ping checks that the database answers reads, that the writer runs and that
// writes are not failing for want of disk space (storage_full while they are).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite read pool: %w", err)
	}
	if err := s.w.alive(); err != nil {
		return err
	}
	return s.space.Check(ctx, s)
}

// Close stops the writer (after the transactions in flight) and closes the database.
func (s *Store) Close() error {
	if s.w != nil {
		s.w.stop()
	}
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	s.read.close()
	var errs []error
	for _, db := range []*sql.DB{s.rdb, s.sdb} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	return errors.Join(errs...)
}

// interpretError maps database/sql and SQLite errors to the storage seam's: no
// rows is ErrNotFound, SQLITE_FULL (a write that found the disk full, or the
// database at its size limit) is storage_full. The domain's own errors pass as
// they are. An I/O error that a full disk caused can only be told from others
// by looking at the disk: the writer does that (ioErrorFull).
func interpretError(err error) error {
	var se *sqlite.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return storage.ErrNotFound
	case errand.ErrorCode(err) != errand.EINTERNAL:
		return err
	case errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL:
		return storage.Full()
	}
	return err
}

// ioErrorFull reports whether err is an SQLite I/O error of the kinds a full
// disk causes (a failed write, fsync, truncate or shared-memory growth) while
// the filesystem of dir has less than a mebibyte left.
func ioErrorFull(err error, dir string) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_IOERR {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_IOERR_WRITE, sqlite3.SQLITE_IOERR_FSYNC, sqlite3.SQLITE_IOERR_DIR_FSYNC,
		sqlite3.SQLITE_IOERR_TRUNCATE, sqlite3.SQLITE_IOERR_SHMSIZE, sqlite3.SQLITE_IOERR_SHMMAP, sqlite3.SQLITE_IOERR:
	default:
		return false
	}
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && uint64(st.Bavail)*uint64(st.Bsize) < 1<<20
}

func mustSub(fsys embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	return sub
}

// SchemaVersion is the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.rdb.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM errand_migrations`).Scan(&v)
	return v, err
}
