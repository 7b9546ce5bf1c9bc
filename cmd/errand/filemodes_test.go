package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EStoreFileModes (issue 18, item 20): a new SQLite store, its -wal and
// -shm files are 0600 in a directory made 0700, the artifacts directory too;
// an existing database readable by others is warned about at start, naming
// the file and its mode.
func TestE2EStoreFileModes(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	db := filepath.Join(data, "errand.db")
	s := startServerEnv(t, testConfig, false, "ERRAND_STORE=sqlite://"+db)
	lease := leaseOne(t, s)
	if code, b := put(s, lease); code != 201 {
		t.Fatalf("upload: %d %s", code, b)
	}
	files, _ := filepath.Glob(filepath.Join(data, "artifacts", "job_*", "small.txt"))
	if len(files) != 1 {
		t.Fatalf("artifact files %v, want one", files)
	}
	for path, want := range map[string]os.FileMode{data: 0o700, db: 0o600, db + "-wal": 0o600, db + "-shm": 0o600,
		filepath.Join(data, "artifacts"): 0o700, filepath.Dir(files[0]): 0o700, files[0]: 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s is %04o, want %04o", path, st.Mode().Perm(), want)
		}
	}
	if strings.Contains(s.logs.String(), "open to other users") {
		t.Errorf("a new store was warned about:\n%s", s.logs.String())
	}
	s.kill()
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	s.start()
	waitLog(t, s, `"file":"`+db+`","mode":"0644"`, 10*time.Second)
}
