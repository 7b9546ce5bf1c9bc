package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/signing"
)

const targetSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// call is one request a test target received.
type call struct {
	at     time.Time
	header http.Header
	body   []byte
}

// target is an HTTP target whose answers the test scripts per call.
type target struct {
	*httptest.Server
	mu    sync.Mutex
	calls []call
}

func newTarget(t *testing.T, answer func(n int, w http.ResponseWriter, body []byte)) *target {
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tg.mu.Lock()
		tg.calls = append(tg.calls, call{time.Now(), r.Header.Clone(), body})
		n := len(tg.calls)
		tg.mu.Unlock()
		answer(n, w, body)
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) Calls() []call {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]call(nil), tg.calls...)
}

func httpOp(name, url, extra string) string {
	return fmt.Sprintf(`
  %s:
    handler: { type: http, url: %q, secret: %q, timeout: 1s }
    retry: { max_attempts: 3, initial: 100ms, max: 200ms }
%s`, name, url, targetSecret, extra)
}

func waitJob(t *testing.T, s *server, id string) *errand.Job {
	t.Helper()
	j, err := s.client().Wait(ctxTimeout(t, 30*time.Second), id, 25*time.Second)
	if err != nil {
		t.Fatalf("wait %s: %v", id, err)
	}
	if !j.Status.Terminal() {
		t.Fatalf("job %s still %s after 25s", id, j.Status)
	}
	return j
}

func submit(t *testing.T, s *server, op string, input any) *errand.Job {
	t.Helper()
	j, err := s.client().Submit(context.Background(), op, input, nil)
	if err != nil {
		t.Fatalf("submit %s: %v", op, err)
	}
	return j.Job
}

func TestE2EHTTPTarget(t *testing.T) {
	t.Parallel()
	ok := newTarget(t, func(n int, w http.ResponseWriter, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"echo":%s}`, body)
	})
	flaky := newTarget(t, func(n int, w http.ResponseWriter, body []byte) {
		if n == 1 {
			w.Header().Set("Retry-After", "2")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})
	bad := newTarget(t, func(n int, w http.ResponseWriter, body []byte) {
		http.Error(w, `{"error":"type must be monthly"}`, http.StatusBadRequest)
	})
	slow := newTarget(t, func(n int, w http.ResponseWriter, body []byte) {
		if n == 1 {
			time.Sleep(3 * time.Second)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `"fast now"`)
	})
	pdf := newTarget(t, func(n int, w http.ResponseWriter, body []byte) {
		w.Header().Set("Content-Type", "application/pdf")
		io.WriteString(w, "%PDF-1.4 not really")
	})
	redirect := newTarget(t, func(n int, w http.ResponseWriter, body []byte) {
		w.Header().Set("Location", "http://169.254.169.254/latest")
		w.WriteHeader(http.StatusFound)
	})
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := "http://" + closed.Addr().String()
	closed.Close()
	cfg := testConfig + httpOp("ok", ok.URL, "") + httpOp("flaky", flaky.URL, "") + httpOp("bad", bad.URL, "") +
		httpOp("slow", slow.URL, "") + httpOp("pdf", pdf.URL, "") + httpOp("redirect", redirect.URL, "") + httpOp("refused", refused, "")
	s := startServer(t, cfg)

	j := waitJob(t, s, submit(t, s, "ok", map[string]string{"type": "monthly"}).ID)
	if j.Status != errand.StatusSucceeded || string(j.Result) != `{"echo":{"type":"monthly"}}` {
		t.Fatalf("ok target: %s %s", j.Status, j.Result)
	}
	c := ok.Calls()[0]
	if c.header.Get("Errand-Job-Id") != j.ID || c.header.Get("Errand-Attempt") != "1" || c.header.Get("webhook-id") != j.ID ||
		!strings.HasPrefix(c.header.Get("traceparent"), "00-") || len(c.header.Get("traceparent")) != 55 {
		t.Fatalf("target request headers: %v", c.header)
	}
	if err := signing.Verify(targetSecret, c.header, c.body, time.Now()); err != nil {
		t.Fatalf("the target cannot verify the signature: %v", err)
	}
	_, _, ob := s.do("GET", "/v1/operations/ok", "")
	_, _, all := s.do("GET", "/v1/operations", "")
	if !strings.Contains(string(ob), `"signing_secret":"`+targetSecret+`"`) || strings.Contains(string(all), "signing_secret") {
		t.Fatalf("the operation view must show its signing secret, the list must not: %s", ob)
	}

	j = waitJob(t, s, submit(t, s, "flaky", nil).ID)
	calls := flaky.Calls()
	if j.Status != errand.StatusSucceeded || j.Attempt != 2 || len(calls) != 2 {
		t.Fatalf("503 then 200: %s after %d attempts (%d calls), want succeeded at attempt 2", j.Status, j.Attempt, len(calls))
	}
	if gap := calls[1].at.Sub(calls[0].at); gap < 2*time.Second || gap > 4*time.Second {
		t.Fatalf("retry came %v after the 503 with Retry-After: 2", gap)
	}

	j = waitJob(t, s, submit(t, s, "bad", nil).ID)
	if j.Status != errand.StatusFailed || j.Attempt != 1 || j.Error.Code != "target_400" || !strings.Contains(j.Error.Detail, "type must be monthly") {
		t.Fatalf("400: %s attempt %d error %+v, want failed at once with the target's answer", j.Status, j.Attempt, j.Error)
	}

	j = waitJob(t, s, submit(t, s, "slow", nil).ID)
	if j.Status != errand.StatusSucceeded || j.Attempt != 2 || string(j.Result) != `"fast now"` {
		t.Fatalf("slow target: %s attempt %d, want succeeded on attempt 2 after a time-out", j.Status, j.Attempt)
	}
	if !hasEventWithCode(t, s, j.ID, "target_timeout") {
		t.Fatalf("slow target: no job.retrying event with code target_timeout")
	}

	j = waitJob(t, s, submit(t, s, "pdf", nil).ID)
	if j.Status != errand.StatusSucceeded || len(j.Artifacts) != 1 || j.Artifacts[0].Name != "response" || j.Artifacts[0].ContentType != "application/pdf" {
		t.Fatalf("non-JSON answer: %s artifacts %+v, want it stored as the artifact response", j.Status, j.Artifacts)
	}
	code, h, body := s.do("GET", j.Artifacts[0].URL, "")
	if code != 200 || h.Get("Content-Type") != "application/pdf" || string(body) != "%PDF-1.4 not really" {
		t.Fatalf("download response artifact: %d %s %q", code, h.Get("Content-Type"), body)
	}

	j = waitJob(t, s, submit(t, s, "redirect", nil).ID)
	if j.Status != errand.StatusFailed || j.Error.Code != "target_302" || !strings.Contains(j.Error.Detail, "not followed") {
		t.Fatalf("redirect: %s %+v, want failed, not followed", j.Status, j.Error)
	}

	j = waitJob(t, s, submit(t, s, "refused", nil).ID)
	if j.Status != errand.StatusFailed || j.Attempt != 3 || j.Error.Code != "target_unreachable" {
		t.Fatalf("refused connection: %s attempt %d %+v, want failed after 3 attempts, target_unreachable", j.Status, j.Attempt, j.Error)
	}
	if code, _, _ := s.do("GET", "/healthz", ""); code != 200 {
		t.Fatalf("server down after bad targets")
	}
}

func hasEventWithCode(t *testing.T, s *server, id, code string) bool {
	evs, err := s.client().Events(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Events {
		if e.Type == errand.EventJobRetrying && strings.Contains(string(e.Data), `"code":"`+code+`"`) {
			return true
		}
	}
	return false
}

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	path := filepath.Join(t.TempDir(), "cmd.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func execOp(name, path, extra string) string {
	return fmt.Sprintf(`
  %s:
    handler: { type: exec, command: [%q], timeout: 2s }
    retry: { max_attempts: 3, initial: 100ms, max: 200ms }
%s`, name, path, extra)
}

func TestE2EExec(t *testing.T) {
	t.Parallel()
	good := script(t, `input=$(cat)
echo "progress: 30 reading" >&2
echo "progress: 80 writing" >&2
printf 'hello artifact' > "$ERRAND_ARTIFACTS_DIR/out.txt"
ln -s /etc/passwd "$ERRAND_ARTIFACTS_DIR/passwd"
printf '{"got":%s,"attempt":%s}' "$input" "$ERRAND_ATTEMPT"
`)
	temp := script(t, `if [ "$ERRAND_ATTEMPT" = 1 ]; then echo "db busy" >&2; exit 75; fi; echo '"second time"'`)
	fail := script(t, `echo "line one" >&2; echo "boom: config missing" >&2; exit 3`)
	pids := filepath.Join(t.TempDir(), "pids")
	hang := script(t, `sleep 300 & echo $! > `+pids+`; echo $$ >> `+pids+`; echo "progress: 10 started" >&2; wait`)
	slow := script(t, `sleep 10`)
	badName := script(t, `printf x > "$ERRAND_ARTIFACTS_DIR/.hidden"; echo ok`)
	big := script(t, `head -c 5000 /dev/zero > "$ERRAND_ARTIFACTS_DIR/big.bin"; echo ok`)
	cfg := "artifacts: { max_bytes: 4096 }\n" + testConfig + execOp("good", good, "") + execOp("temp", temp, "") +
		execOp("fail", fail, "") + execOp("hang", hang, "    timeout: 1m\n") + execOp("slow", slow, "") +
		execOp("missing", "/nonexistent/render-report", "") + execOp("badname", badName, "") + execOp("big", big, "")
	s := startServer(t, cfg)

	j := waitJob(t, s, submit(t, s, "good", map[string]int{"n": 7}).ID)
	if j.Status != errand.StatusSucceeded || string(j.Result) != `{"got":{"n":7},"attempt":1}` {
		t.Fatalf("exec success: %s %s %+v", j.Status, j.Result, j.Error)
	}
	if j.Progress == nil || j.Progress.Percent != 80 || j.Progress.Message != "writing" {
		t.Fatalf("progress = %+v, want 80 writing", j.Progress)
	}
	if len(j.Artifacts) != 1 || j.Artifacts[0].Name != "out.txt" || j.Artifacts[0].Size != 14 {
		t.Fatalf("artifacts = %+v, want out.txt only (the symlink to /etc/passwd is not an artifact)", j.Artifacts)
	}
	code, h, body := s.do("GET", j.Artifacts[0].URL, "", "Range", "bytes=6-13")
	if code != http.StatusPartialContent || string(body) != "artifact" || h.Get("Content-Range") != "bytes 6-13/14" {
		t.Fatalf("range download = %d %q %q", code, body, h.Get("Content-Range"))
	}

	j = waitJob(t, s, submit(t, s, "temp", nil).ID)
	if j.Status != errand.StatusSucceeded || j.Attempt != 2 || !hasEventWithCode(t, s, j.ID, "exit_75") {
		t.Fatalf("exit 75: %s attempt %d, want succeeded at attempt 2 after an exit_75 retry", j.Status, j.Attempt)
	}

	j = waitJob(t, s, submit(t, s, "fail", nil).ID)
	if j.Status != errand.StatusFailed || j.Attempt != 1 || j.Error.Code != "exit_3" || !strings.Contains(j.Error.Detail, "boom: config missing") {
		t.Fatalf("exit 3: %s attempt %d %+v, want failed at once with the stderr tail", j.Status, j.Attempt, j.Error)
	}

	j = waitJob(t, s, submit(t, s, "missing", nil).ID)
	if j.Status != errand.StatusFailed || j.Error.Code != "command_not_started" || !strings.Contains(j.Error.Detail, "/nonexistent/render-report") {
		t.Fatalf("missing command: %s %+v", j.Status, j.Error)
	}

	j = waitJob(t, s, submit(t, s, "slow", nil).ID)
	if j.Status != errand.StatusFailed || j.Attempt != 3 || j.Error.Code != "timeout" {
		t.Fatalf("slow command: %s attempt %d %+v, want failed after 3 timed-out attempts", j.Status, j.Attempt, j.Error)
	}

	j = waitJob(t, s, submit(t, s, "badname", nil).ID)
	if j.Status != errand.StatusFailed || j.Error.Code != "artifact_name" {
		t.Fatalf("artifact named .hidden: %s %+v, want a clear failure", j.Status, j.Error)
	}
	j = waitJob(t, s, submit(t, s, "big", nil).ID)
	if j.Status != errand.StatusFailed || j.Error.Code != "artifact_body_too_large" || !strings.Contains(j.Error.Detail, "4096") {
		t.Fatalf("artifact over the limit: %s %+v", j.Status, j.Error)
	}

	// Cancel a running command: its whole process group ends, no orphan is left.
	hj := submit(t, s, "hang", nil)
	for i := 0; ; i++ {
		if got, _ := s.client().Get(context.Background(), hj.ID); got.Progress != nil {
			break
		}
		if i > 200 {
			t.Fatalf("the hanging command never reported progress")
		}
		time.Sleep(25 * time.Millisecond)
	}
	b, _ := os.ReadFile(pids)
	var procs []int
	for _, f := range strings.Fields(string(b)) {
		n, _ := strconv.Atoi(f)
		procs = append(procs, n)
	}
	if len(procs) != 2 {
		t.Fatalf("pids file = %q", b)
	}
	if _, err := s.client().Cancel(context.Background(), hj.ID); err != nil {
		t.Fatal(err)
	}
	j = waitJob(t, s, hj.ID)
	if j.Status != errand.StatusCanceled {
		t.Fatalf("canceled running command: %s %+v", j.Status, j.Error)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range procs {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("process %d (of %v) still alive after cancel", pid, procs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestE2EWorkerArtifacts(t *testing.T) {
	t.Parallel()
	s := startServer(t, "artifacts: { max_bytes: 1000 }\n"+testConfig)
	j := submit(t, s, "echo", nil)
	var leased struct{ Leases []errand.Lease }
	_, _, lb := s.do("POST", "/v1/leases", `{"operations":["echo"]}`)
	mustJSON(t, lb, &leased)
	lease := leased.Leases[0].ID
	code, h, body := s.do("PUT", "/v1/leases/"+lease+"/artifacts/report.csv", "a,b\n1,2\n", "Content-Type", "text/csv")
	if code != 201 || h.Get("Location") != "/v1/jobs/"+j.ID+"/artifacts/report.csv" {
		t.Fatalf("upload = %d %s %s", code, h.Get("Location"), body)
	}
	for _, tt := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"traversal", "/v1/leases/" + lease + "/artifacts/..%2F..%2Fetc%2Fpasswd", "x", 400, "invalid_request"},
		{"hidden", "/v1/leases/" + lease + "/artifacts/.env", "x", 400, "invalid_request"},
		{"too big", "/v1/leases/" + lease + "/artifacts/big.bin", strings.Repeat("x", 2000), 413, "body_too_large"},
		{"stale lease", "/v1/leases/lease_" + j.ID + ".00000000000000000000000000000000/artifacts/x.txt", "x", 409, "lease_expired"},
	} {
		code, _, b := s.do("PUT", tt.path, tt.body)
		var p errand.Problem
		json.Unmarshal(b, &p)
		if code != tt.status || p.Code != tt.code {
			t.Errorf("%s: PUT %s = %d %s, want %d %s", tt.name, tt.path, code, b, tt.status, tt.code)
		}
	}
	s.do("POST", "/v1/leases/"+lease+"/complete", `{"result":{"rows":1}}`)
	got, _ := s.client().Get(context.Background(), j.ID)
	if len(got.Artifacts) != 1 || got.Artifacts[0].ContentType != "text/csv" || got.Artifacts[0].Size != 8 {
		t.Fatalf("artifacts on the job = %+v", got.Artifacts)
	}
	code, h, body = s.do("GET", got.Artifacts[0].URL, "")
	if code != 200 || h.Get("Content-Type") != "text/csv" || h.Get("Content-Length") != "8" || string(body) != "a,b\n1,2\n" {
		t.Fatalf("download = %d %v %q", code, h, body)
	}
	if code, _, _ := s.do("GET", "/v1/jobs/"+j.ID+"/artifacts/nope.csv", ""); code != 404 {
		t.Fatalf("missing artifact = %d, want 404", code)
	}
	// Deleting the job deletes its files.
	if err := s.client().Delete(context.Background(), j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "artifacts", j.ID)); !os.IsNotExist(err) {
		t.Fatalf("artifact directory after delete: %v, want gone", err)
	}
}

// TestE2EGeneratedSigningSecret: an http operation without a secret signs with one
// errand makes, keeps across restarts and shows on the operation.
func TestE2EGeneratedSigningSecret(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, func(n int, w http.ResponseWriter, body []byte) { w.WriteHeader(204) })
	s := startServer(t, testConfig+fmt.Sprintf("\n  signed:\n    handler: { type: http, url: %q }\n", tg.URL))
	secretOf := func() string {
		var op struct {
			SigningSecret string `json:"signing_secret"`
		}
		_, _, b := s.do("GET", "/v1/operations/signed", "")
		mustJSON(t, b, &op)
		return op.SigningSecret
	}
	secret := secretOf()
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("generated secret = %q", secret)
	}
	waitJob(t, s, submit(t, s, "signed", nil).ID)
	c := tg.Calls()[0]
	if err := signing.Verify(secret, c.header, c.body, time.Now()); err != nil {
		t.Fatalf("verify with the shown secret: %v", err)
	}
	s.kill()
	s.start()
	if again := secretOf(); again != secret {
		t.Fatalf("secret after restart = %q, want the same %q", again, secret)
	}
}
