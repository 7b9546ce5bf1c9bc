package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/worker"
)

// TestE2EGracefulShutdown sends SIGTERM while a worker long-polls: the poll ends
// at once, errand exits 0 and what it accepted is still there after a restart.
func TestE2EGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	j, err := s.client().Submit(context.Background(), "echo", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	polled := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		s.client().Do(context.Background(), "POST", "/v1/leases", map[string]any{"operations": []string{"generate-report"}, "wait_seconds": 60}, nil, nil)
		polled <- time.Since(start)
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("errand exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("errand did not exit within 10s of SIGTERM")
	}
	if d := <-polled; d > 5*time.Second {
		t.Fatalf("the long poll lasted %v: shutdown must end it", d)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start))
	if !strings.Contains(s.logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no 'stopped' log line:\n%s", s.logs.String())
	}
	s.start()
	if got, err := s.client().Get(context.Background(), j.ID); err != nil || got.Status != errand.StatusQueued {
		t.Fatalf("job after restart = %v, %v", got, err)
	}
}

// TestE2EWorkerGracefulStop stops an SDK worker with a job running: a job that
// finishes within ShutdownTimeout completes; one that does not is released and
// its attempt is not counted.
func TestE2EWorkerGracefulStop(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	c := s.client()
	quick, _ := c.Submit(context.Background(), "echo", map[string]int{"ms": 300}, nil)
	slow, _ := c.Submit(context.Background(), "echo", map[string]int{"ms": 60000}, nil)
	started := make(chan struct{}, 2)
	w, _ := worker.New(worker.Config{URL: s.URL, Operations: []string{"echo"}, Concurrency: 2, ShutdownTimeout: time.Second},
		func(ctx context.Context, j *worker.Job) (any, error) {
			started <- struct{}{}
			var in struct{ Ms int }
			_ = jsonUnmarshal(j.Input, &in)
			select {
			case <-time.After(time.Duration(in.Ms) * time.Millisecond):
				return "done", nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	<-started
	<-started
	stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker did not stop within 10s")
	}
	if got, _ := c.Get(context.Background(), quick.ID); got.Status != errand.StatusSucceeded {
		t.Fatalf("quick job after stop = %s, want succeeded (it finished within the shutdown timeout)", got.Status)
	}
	got, _ := c.Get(context.Background(), slow.ID)
	if got.Status != errand.StatusQueued || got.Attempt != 0 {
		t.Fatalf("slow job after stop = %s attempt %d, want released: queued, attempt 0", got.Status, got.Attempt)
	}
}

var update = flag.Bool("update", false, "rewrite golden files")

// TestRunCLI calls run as the binary would be called and compares what a user
// sees with golden files.
func TestRunCLI(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: \":8080\"\noperations:\n  report:\n    retry: {max_attempts: 3, maxx: 1s}\n"), 0o600)
	badAuth := filepath.Join(dir, "bad-auth.yaml")
	os.WriteFile(badAuth, []byte("listen: \"127.0.0.1:0\"\nauth:\n  api_keys:\n    - { name: ci, sha256: nope, roles: [ghost] }\n"), 0o600)
	env := func(string) string { return "" }
	tests := []struct {
		name string
		args []string
	}{
		{"help", []string{"--help"}},
		{"serve-bad-auth", []string{"serve", "--config", badAuth}},
		{"serve-bad-config", []string{"serve", "--dev", "--config", bad}},
		{"unknown-command", []string{"frobnicate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, env, strings.NewReader(""), &out, &errOut)
			got := out.String() + errOut.String()
			if err != nil {
				got += "error: " + strings.ReplaceAll(err.Error(), dir, "$DIR") + "\n"
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				os.MkdirAll("testdata", 0o755)
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, _ := os.ReadFile(golden)
			if got != string(want) {
				t.Errorf("errand %s:\n%s\nwant:\n%s", strings.Join(tt.args, " "), got, want)
			}
		})
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, env, nil, &out, &out); err != nil || !strings.HasPrefix(out.String(), "errand ") {
		t.Fatalf("errand version = %q, %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"serve", "--dev", "--listen", "nope"}, env, nil, &out, &out); err == nil ||
		!errors.Is(err, err) || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("serve --listen nope = %v, want an error naming listen", err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
