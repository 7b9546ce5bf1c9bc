package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/errandhq/errand"
	"github.com/spf13/cobra"
)

// normalize replaces what changes from run to run in CLI output.
func normalize(s, url string) string {
	s = strings.ReplaceAll(s, url, "$URL")
	s = regexp.MustCompile(`job_[0-9A-HJKMNP-TV-Z]{26}`).ReplaceAllString(s, "$$JOB")
	s = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`).ReplaceAllString(s, "$$TIME")
	s = regexp.MustCompile(`\d\d:\d\d:\d\d\.\d{3}`).ReplaceAllString(s, "$$CLOCK")
	s = regexp.MustCompile(`--cursor \S+`).ReplaceAllString(s, "--cursor $$CURSOR")
	return s
}

// cli runs errand in-process with args and returns what it printed and its error.
func cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(stdin), &out, &out)
	if err != nil {
		out.WriteString("error: " + err.Error() + "\n")
	}
	return out.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "cli", name+".golden")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, _ := os.ReadFile(path)
	if got != string(want) {
		t.Errorf("%s:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestCLIHelp keeps every command's --help in a golden file.
func TestCLIHelp(t *testing.T) {
	root := newRootCmd(func(string) string { return "" }, nil, io.Discard, io.Discard)
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			path := strings.Fields(sub.CommandPath())[1:]
			golden(t, "help-"+strings.Join(path, "-"), cli(t, "", append(path, "--help")...))
			n++
			walk(sub)
		}
	}
	walk(root)
	if n < 14 {
		t.Fatalf("only %d commands have help", n)
	}
}

// TestCLICommands runs every client command against a real server.
func TestCLICommands(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	srv := []string{"--server", s.URL}
	do := func(name, stdin string, args ...string) string {
		out := cli(t, stdin, append(args, srv...)...)
		golden(t, name, normalize(out, s.URL))
		return out
	}
	do("operations-list", "", "operations", "list")
	out := do("submit", "", "submit", "echo", "--data", `{"n":1}`)
	id := regexp.MustCompile(`job_\w{26}`).FindString(out)
	do("submit-stdin-json", `{"n":2}`, "submit", "echo", "--data", "-", "-o", "json")
	do("submit-idempotent", "", "submit", "echo", "--data", `{"n":3}`, "--idempotency-key", "k1")
	do("submit-bad-json", "", "submit", "echo", "--data", `{"n":`)
	do("submit-unknown-op", "", "submit", "nope")
	do("submit-invalid-input", "", "submit", "generate-report", "--data", `{"type":"daily"}`)
	do("jobs-get", "", "jobs", "get", id)
	do("jobs-list", "", "jobs", "list", "--operation", "echo", "--limit", "2")
	do("jobs-cancel", "", "jobs", "cancel", id)
	do("jobs-retry", "", "jobs", "retry", id)
	cli(t, "", append([]string{"jobs", "cancel", id}, srv...)...)
	do("jobs-delete", "", "jobs", "delete", id)
	do("jobs-get-missing", "", "jobs", "get", id)
	do("bad-output", "", "jobs", "list", "-o", "yaml")
	golden(t, "server-down", cli(t, "", "jobs", "list", "--server", "http://127.0.0.1:1"))
}

// TestCLIWatch follows a job under a pseudo-terminal (a progress bar) and through
// a pipe (one line per event), driven by the exec worker command.
func TestCLIWatch(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	work := script(t, `for p in 25 50 75; do echo "progress: $p step $p" >&2; sleep 0.3; done; echo '{"done":true}'`)
	w := exec.Command(binary, "worker", "--operation", "echo", "--server", s.URL, "--", work)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { w.Process.Signal(os.Interrupt); w.Wait() }()

	j := submit(t, s, "echo", nil)
	cmd := exec.Command(binary, "jobs", "watch", j.ID, "--server", s.URL)
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	var screen bytes.Buffer
	io.Copy(&screen, tty) // until the command exits and the pty closes
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch under a terminal: %v\n%s", err, screen.String())
	}
	if out := screen.String(); !strings.Contains(out, "100%") || !strings.Contains(out, "█") || !strings.Contains(out, "succeeded") {
		t.Fatalf("terminal watch did not draw a progress bar to 100%% and succeeded:\n%q", out)
	}

	j = submit(t, s, "echo", nil)
	piped, err := exec.Command(binary, "jobs", "watch", j.ID, "--server", s.URL).Output()
	if err != nil {
		t.Fatalf("piped watch: %v\n%s", err, piped)
	}
	got := normalize(string(piped), s.URL)
	want := "$CLOCK job.created queued\n$CLOCK job.started attempt 1 by "
	if !strings.HasPrefix(got, want) || !strings.Contains(got, "job.progress 50% step 50\n") ||
		!strings.HasSuffix(got, "job.succeeded {\"done\":true}\n") || strings.Contains(got, "\r") {
		t.Fatalf("piped watch output:\n%s", got)
	}
	// A failed job: watch exits 1 and says why.
	fails := startServer(t, testConfig)
	k := submit(t, fails, "echo", nil)
	fw := exec.Command(binary, "worker", "--operation", "echo", "--server", fails.URL, "--", script(t, "echo nope >&2; exit 2"))
	fw.Start()
	defer func() { fw.Process.Signal(os.Interrupt); fw.Wait() }()
	out, err := exec.Command(binary, "jobs", "watch", k.ID, "--server", fails.URL).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "exit_2: the command exited with status 2: nope") {
		t.Fatalf("watch of a failing job: %v\n%s", err, out)
	}
	_ = errand.StatusFailed
	_ = time.Second
}
