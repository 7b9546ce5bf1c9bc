package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestBadConfigs loads every file in testdata/bad and compares the error with its
// golden .err file: what an operator reads must name the key and the line.
func TestBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no test configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(Source{File: f})
			if err == nil {
				t.Fatalf("Load(%s) = nil error, want one", f)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, _ := os.ReadFile(golden)
			if got != string(want) {
				t.Errorf("Load(%s) error:\n%s\nwant:\n%s", f, got, want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load(Source{})
	if err != nil {
		t.Fatalf("Load(nothing): %v", err)
	}
	if c.Listen != ":8080" || c.Store != "sqlite://./errand-data/errand.db" || c.Dev || c.HTTP.MaxBodyBytes != 1<<20 ||
		time.Duration(c.HTTP.MaxWait) != time.Minute || c.Workers.MaxJobs != 1000 {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestExample(t *testing.T) {
	c, err := Load(Source{File: "../examples/errand.yaml"})
	if err != nil {
		t.Fatalf("examples/errand.yaml: %v", err)
	}
	ops := c.OperationList()
	if len(ops) != 1 || ops[0].Name != "generate-report" || ops[0].Route != "/generate-report" || ops[0].Concurrency != 8 ||
		ops[0].Retry.MaxAttempts != 5 || ops[0].Timeout != 10*time.Minute || len(ops[0].InputSchema) == 0 {
		t.Fatalf("example operations = %+v", ops)
	}
	if chans := c.ChannelList(); len(chans) != 1 || chans[0].Pattern != "orders.*" || chans[0].History != 24*time.Hour {
		t.Fatalf("example channels = %+v", chans)
	}
}

func TestOverrides(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "errand.yaml")
	os.WriteFile(file, []byte("listen: \":1111\"\nhttp: {max_wait: 10s}\noperations:\n  a: {}\n"), 0o600)
	env := map[string]string{"ERRAND_LISTEN": ":2222", "ERRAND_HTTP__MAX_WAIT": "20s", "ERRAND_DEV": "true"}
	c, err := Load(Source{File: file, Getenv: func(k string) string { return env[k] }, Flags: map[string]string{"listen": ":3333"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":3333" || time.Duration(c.HTTP.MaxWait) != 20*time.Second || !c.Dev {
		t.Fatalf("flags > env > file: listen %s max_wait %s dev %v", c.Listen, c.HTTP.MaxWait, c.Dev)
	}
	if ops := c.OperationList(); ops[0].Handler.Type != errand.HandlerPull || ops[0].Retry.MaxAttempts != errand.DefaultMaxAttempts {
		t.Fatalf("operation defaults = %+v", ops[0])
	}
	env = map[string]string{"ERRAND_HTTP__MAX_BODY_BYTES": "huge"}
	_, err = Load(Source{File: file, Getenv: func(k string) string { return env[k] }})
	if err == nil || !strings.Contains(err.Error(), "ERRAND_HTTP__MAX_BODY_BYTES") {
		t.Fatalf("bad env value: %v, want an error naming the variable", err)
	}
}

func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.yaml")
	seeds = append(seeds, "../examples/errand.yaml")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Skip()
		}
		c, err := Load(Source{File: path})
		if err == nil {
			c.OperationList() // a config that loads must convert
		}
	})
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "512MiB": 512 << 20, "8 MiB": 8 << 20, "64KB": 64000,
		"1.5GiB": 3 << 29, "10B": 10, "2TB": 2e12} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1MiB", "1XB", "1e30GiB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
	env := map[string]string{"ERRAND_MEMORY_LIMIT": "512MiB", "ERRAND_HTTP__PAGE_BYTES": "1MiB"}
	c, err := Load(Source{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if c.MemoryLimit != 512<<20 || c.HTTP.PageBytes != 1<<20 || c.HTTP.ReplayBytes != errand.DefaultReplayBytes {
		t.Fatalf("memory_limit %d page_bytes %d replay_bytes %d", c.MemoryLimit, c.HTTP.PageBytes, c.HTTP.ReplayBytes)
	}
}
