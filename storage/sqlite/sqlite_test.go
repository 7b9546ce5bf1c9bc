package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/sqlite"
	"github.com/errandhq/errand/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Exercise(t, func(t *testing.T) storage.Store { return teststore.Open(t) })
}

func TestObserver(t *testing.T) {
	storagetest.Observe(t, func(t *testing.T, o storage.Observer) storage.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "errand.db"), &sqlite.Config{Observer: o})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "errand.db")
	s, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	j := storagetest.Job("job_1")
	if err := s.WithTx(context.Background(), func(tx storage.Tx) error { return tx.InsertJob(j) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if _, err := s2.GetJob(context.Background(), j.Tenant, j.ID); err != nil {
		t.Fatalf("job after reopen: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in, path, sync string
		ok             bool
	}{
		{"sqlite://./data/e.db", "./data/e.db", "", true},
		{"sqlite:e.db?synchronous=normal", "e.db", "normal", true},
		{"sqlite:///abs/e.db", "/abs/e.db", "", true},
		{"sqlite://", "", "", false},
		{"postgres://x", "", "", false},
		{"sqlite://e.db?cache=shared", "", "", false},
	}
	for _, tt := range tests {
		path, cfg, err := sqlite.ParseURL(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseURL(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && (path != tt.path || cfg.Synchronous != tt.sync) {
			t.Errorf("ParseURL(%q) = %q, %q; want %q, %q", tt.in, path, cfg.Synchronous, tt.path, tt.sync)
		}
	}
}

// TestUpgrade0008: owners stored before migration 0008 keep their identities.
func TestUpgrade0008(t *testing.T) {
	path := filepath.Join(t.TempDir(), "errand.db")
	open := func() storage.Store {
		s, err := sqlite.Open(context.Background(), path, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}
	storagetest.Upgrade0008(t, open, func() {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		// What the migrations after 0008 made goes too, so that they run again.
		if _, err := db.Exec(`DROP INDEX jobs_queued_key; DROP INDEX jobs_started; DROP TABLE job_unique;
			ALTER TABLE jobs DROP COLUMN queue_key; DROP INDEX jobs_queued_fair; DROP INDEX jobs_running_key;
			ALTER TABLE jobs DROP COLUMN concurrency_key; ALTER TABLE jobs DROP COLUMN fair_key; DROP TABLE operation_flow;
			DROP INDEX jobs_queued_tenant; DROP TABLE usage; ALTER TABLE jobs DROP COLUMN trace_parent;
			ALTER TABLE webhook_deliveries DROP COLUMN trace_parent; DELETE FROM errand_migrations WHERE version >= 8`); err != nil {
			t.Fatalf("rewind: %v", err)
		}
	})
}
