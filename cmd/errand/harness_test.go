package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/errandhq/errand/client"
)

// binary is the errand binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv("ERRAND_HELPER_URL") != "" {
		// A helper process (TestHelperHangingWorker) needs no binary: building
		// one would take seconds the test that started it is waiting on.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "errand-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "errand")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build errand: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testConfig is the configuration the end-to-end tests serve.
const testConfig = `
listen: "127.0.0.1:0"
log: { level: info }
http: { max_body_bytes: 65536 }
operations:
  generate-report:
    description: Builds a report.
    route: /generate-report
    input_schema:
      type: object
      required: [type]
      additionalProperties: false
      properties:
        type: { enum: [monthly, weekly] }
    retry: { max_attempts: 5, initial: 100ms, max: 1s }
  echo:
    retry: { max_attempts: 10, initial: 50ms, max: 200ms }
  hybrid:
    wait: 3s
`

// server is a running errand process.
type server struct {
	t    *testing.T
	dir  string
	env  []string // extra environment for the process
	wrap []string // a command that runs errand (prlimit …), when set
	auth bool     // serve with authentication (no --dev)
	cmd  *exec.Cmd
	URL  string
	logs *syncBuffer
	done chan error
}

// startServer runs errand serve --dev with the config in a temp data directory.
func startServer(t *testing.T, config string) *server {
	t.Helper()
	return startServerWith(t, config, false)
}

// startServerWith runs errand serve, with authentication when auth is set.
func startServerWith(t *testing.T, config string, auth bool) *server {
	t.Helper()
	return startServerEnv(t, config, auth)
}

// startServerEnv runs errand serve with extra environment (ERRAND_STORE=… points
// it at another store than the SQLite file in its directory).
func startServerEnv(t *testing.T, config string, auth bool, env ...string) *server {
	t.Helper()
	return startServerWrapped(t, config, auth, nil, env...)
}

// startServerWrapped runs errand serve under the command wrap (nil: none).
func startServerWrapped(t *testing.T, config string, auth bool, wrap []string, env ...string) *server {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "errand.yaml")
	cfg := config + "\nstore: \"sqlite://" + filepath.Join(dir, "errand.db") + "\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, dir: dir, auth: auth, env: env, wrap: wrap}
	s.start()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	return s
}

func (s *server) start() {
	s.t.Helper()
	args := []string{"serve", "--config", filepath.Join(s.dir, "errand.yaml")}
	if !s.auth {
		args = append(args, "--dev")
	}
	s.cmd = exec.Command(binary, args...)
	if len(s.wrap) > 0 {
		s.cmd = exec.Command(s.wrap[0], append(append(s.wrap[1:len(s.wrap):len(s.wrap)], binary), args...)...)
	}
	s.cmd.Env = append(append(os.Environ(), "ERRAND_LOG__LEVEL=info"), s.env...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start errand: %v", err)
	}
	s.logs = &syncBuffer{}
	urls := make(chan string, 1)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.logs.WriteString(line + "\n")
			var rec struct{ Msg, URL string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				urls <- rec.URL
			}
		}
	}()
	s.done = make(chan error, 1)
	// Wait only after the log is read to its end: Wait closes the pipe.
	go func() { <-logged; s.done <- s.cmd.Wait() }()
	select {
	case s.URL = <-urls:
	case err := <-s.done:
		s.t.Fatalf("errand exited at start: %v\n%s", err, s.logs.String())
	case <-time.After(15 * time.Second):
		s.t.Fatalf("errand did not start in 15s\n%s", s.logs.String())
	}
}

// kill stops the process with SIGKILL: nothing is flushed, nothing is drained.
func (s *server) kill() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
}

// client returns an SDK client for the server.
func (s *server) client() *client.Client { return client.New(s.URL) }

// do sends a raw request and returns the status, headers and body.
func (s *server) do(method, path, body string, header ...string) (int, http.Header, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// keepPort makes later starts listen where this one did (clients reconnect to
// the same URL after a restart).
func (s *server) keepPort() {
	s.env = append(s.env, "ERRAND_LISTEN="+strings.TrimPrefix(s.URL, "http://"))
}
