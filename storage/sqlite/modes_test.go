package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/errandhq/errand/storage/sqlite"
)

// lockedBuffer collects log output from the store's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFileModes: a new store (it holds webhook secrets and signing keys) is
// readable by its owner only, its directory too; an existing database readable
// by others is warned about, naming the file and its mode.
func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "errand.db")
	var logs lockedBuffer
	cfg := &sqlite.Config{Log: slog.New(slog.NewTextHandler(&logs, nil))}
	s, err := sqlite.Open(context.Background(), path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Setting(context.Background(), "k", "v"); err != nil { // a write: the WAL has frames
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s is %04o, want %04o", p, st.Mode().Perm(), want)
		}
	}
	s.Close()
	if logs.String() != "" {
		t.Errorf("a new store logged:\n%s", logs.String())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(context.Background(), path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	want := fmt.Sprintf("file=%s mode=0644", path)
	if !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("reopening a 0644 store logged:\n%s\nwant a warning with %q", logs.String(), want)
	}
}
