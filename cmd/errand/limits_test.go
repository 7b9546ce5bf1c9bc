package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMaxConnections(t *testing.T) {
	for _, c := range []struct {
		configured int
		fds        uint64
		want       int
	}{
		{0, 20000, 20000 - 4000 - 16},
		{0, 1024, 1024 - 204 - 16},
		{0, 256, 256 - 128 - 16},
		{0, 100, 16},
		{0, 0, 100_000},
		{50, 20000, 50},
	} {
		if got := maxConnections(c.configured, c.fds); got != c.want {
			t.Errorf("maxConnections(%d, %d) = %d, want %d", c.configured, c.fds, got, c.want)
		}
	}
}

// writeCgroup lays out a root with /proc/self/cgroup naming a v2 cgroup whose
// memory.max is max (no file when "").
func writeCgroup(t *testing.T, max string) string {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "proc/self"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/self/cgroup"), []byte("0::/errand.slice/node\n"), 0o644)
	if max != "" {
		dir := filepath.Join(root, "sys/fs/cgroup/errand.slice/node")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "memory.max"), []byte(max+"\n"), 0o644)
	}
	return root
}

func TestCgroupMemoryMax(t *testing.T) {
	if n, ok := cgroupMemoryMax(writeCgroup(t, "1073741824")); !ok || n != 1<<30 {
		t.Errorf("memory.max 1073741824 = %d, %v", n, ok)
	}
	if n, ok := cgroupMemoryMax(writeCgroup(t, "max")); ok {
		t.Errorf("memory.max max = %d, want none", n)
	}
	if n, ok := cgroupMemoryMax(writeCgroup(t, "")); ok {
		t.Errorf("no memory.max = %d, want none", n)
	}
	v1 := t.TempDir()
	os.MkdirAll(filepath.Join(v1, "sys/fs/cgroup/memory"), 0o755)
	os.WriteFile(filepath.Join(v1, "sys/fs/cgroup/memory/memory.limit_in_bytes"), []byte("9223372036854771712\n"), 0o644)
	if n, ok := cgroupMemoryMax(v1); ok {
		t.Errorf("cgroup v1 without a limit = %d, want none", n)
	}
}

func TestMemoryLimitChoice(t *testing.T) {
	cg := func(n int64) func() (int64, bool) { return func() (int64, bool) { return n, n > 0 } }
	for _, c := range []struct {
		name       string
		configured int64
		env        string
		current    int64
		cgroup     int64
		want       int64
		source     string
	}{
		{"GOMEMLIMIT wins", 512 << 20, "200MiB", 200 << 20, 1 << 30, 200 << 20, "GOMEMLIMIT"},
		{"GOMEMLIMIT=off", 512 << 20, "off", math.MaxInt64, 1 << 30, 0, "GOMEMLIMIT"},
		{"config", 512 << 20, "", math.MaxInt64, 1 << 30, 512 << 20, "memory_limit"},
		{"cgroup share", 0, "", math.MaxInt64, 1000 << 20, 900 << 20, "cgroup"},
		{"nothing", 0, "", math.MaxInt64, 0, 0, "none"},
	} {
		got, source := memoryLimit(c.configured, c.env, c.current, cg(c.cgroup))
		if got != c.want || source != c.source {
			t.Errorf("%s: memoryLimit = %d from %s, want %d from %s", c.name, got, source, c.want, c.source)
		}
	}
}

// TestE2EMemoryLimitApplied: the server logs the soft memory limit it set and
// where it came from: memory_limit from the config, GOMEMLIMIT over it.
func TestE2EMemoryLimitApplied(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env    []string
		limit  int64
		source string
	}{
		{nil, 300 << 20, "memory_limit"},
		{[]string{"GOMEMLIMIT=200MiB"}, 200 << 20, "GOMEMLIMIT"},
	} {
		s := startServerEnv(t, testConfig+"memory_limit: 300MiB\n", false, c.env...)
		var rec struct {
			Limit  int64  `json:"limit_bytes"`
			Source string `json:"source"`
		}
		deadline := time.Now().Add(5 * time.Second)
		for rec.Source == "" && time.Now().Before(deadline) {
			for _, line := range strings.Split(s.logs.String(), "\n") {
				if strings.Contains(line, `"msg":"memory limit"`) {
					json.Unmarshal([]byte(line), &rec)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		if rec.Limit != c.limit || rec.Source != c.source {
			t.Errorf("env %v: logged memory limit %d from %q, want %d from %s", c.env, rec.Limit, rec.Source, c.limit, c.source)
		}
		s.kill()
	}
}
