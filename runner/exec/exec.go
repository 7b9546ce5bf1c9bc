// Package exec runs jobs as local commands: the job's input on stdin, the result
// on stdout (JSON, or else kept as a JSON string), progress as stderr lines
// "progress: <percent> <message>", and files written to $ERRAND_ARTIFACTS_DIR
// stored as the job's artifacts.
//
// Exit 0 succeeds; exit 75 (EX_TEMPFAIL) is retried with backoff; any other exit
// fails the job with the tail of stderr. A time-out or a cancel sends SIGTERM to
// the command's whole process group, then SIGKILL after a grace period, and once
// the command ends whatever it left running in its group is killed too: no orphans.
package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/jsonguard"
	"github.com/errandhq/errand/worker"
)

// Limits of the exec handler.
const (
	// MaxStdout caps the result read from stdout (16 MiB).
	MaxStdout = 16 << 20
	// StderrTail is how much of stderr a failed job's error keeps (4 KiB).
	StderrTail = 4 << 10
	// Grace is how long a command has between SIGTERM and SIGKILL.
	Grace = 5 * time.Second
	// ExitTempFail is the exit code that asks for a retry (EX_TEMPFAIL).
	ExitTempFail = 75
)

// Runner runs an operation's command.
type Runner struct {
	op errand.Operation
}

// New returns the runner for op.
func New(op errand.Operation) *Runner { return &Runner{op: op} }

// Run runs the command once for j.
func (r *Runner) Run(ctx context.Context, j *worker.Job) (any, error) {
	dir, err := os.MkdirTemp("", "errand-artifacts-")
	if err != nil {
		return nil, fmt.Errorf("artifacts directory: %w", err)
	}
	defer os.RemoveAll(dir)
	tctx, cancel := context.WithTimeout(ctx, r.op.Handler.Timeout)
	defer cancel()
	stdout := &capped{max: MaxStdout}
	stderr := &progressWriter{ctx: ctx, job: j}
	cmd := r.command(j, dir, stdout, stderr)
	if err := cmd.Start(); err != nil {
		return nil, &worker.Error{Code: "command_not_started", NoRetry: true,
			Err: fmt.Errorf("cannot start %q: %w", r.op.Handler.Command[0], err)}
	}
	stop := killOnDone(tctx, cmd.Process.Pid)
	waitErr := cmd.Wait()
	stop()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever the command left behind in its group
	stderr.flush()
	if ctx.Err() != nil {
		return nil, ctx.Err() // canceled or lease lost: the worker loop reports it
	}
	if errors.Is(tctx.Err(), context.DeadlineExceeded) {
		return nil, &worker.Error{Code: "timeout", Err: fmt.Errorf("the command ran longer than %s and was killed; stderr: %s",
			r.op.Handler.Timeout, stderr.tail())}
	}
	if err := r.storeArtifacts(ctx, j, dir); err != nil {
		return nil, err
	}
	return r.outcome(waitErr, stdout, stderr)
}

func (r *Runner) command(j *worker.Job, dir string, stdout *capped, stderr *progressWriter) *osexec.Cmd {
	h := r.op.Handler
	cmd := osexec.Command(h.Command[0], h.Command[1:]...)
	cmd.Dir = h.Dir
	cmd.Env = append(os.Environ(), "ERRAND_JOB_ID="+j.ID, "ERRAND_ATTEMPT="+strconv.Itoa(j.Attempt),
		"ERRAND_OPERATION="+j.Operation, "ERRAND_ARTIFACTS_DIR="+dir)
	if j.TraceParent != "" { // the environment as a trace context carrier, as OpenTelemetry specifies it
		cmd.Env = append(cmd.Env, "TRACEPARENT="+j.TraceParent)
	}
	for k, v := range h.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = bytes.NewReader(j.Input)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group, so we can end all of it
	cmd.WaitDelay = Grace                                 // children holding the pipes must not hang Wait
	return cmd
}

// killOnDone ends the process group when ctx ends: SIGTERM, then SIGKILL after
// Grace. The returned function stops watching (call it once the command exited).
func killOnDone(ctx context.Context, pid int) func() {
	exited := make(chan struct{})
	go func() {
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(Grace):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
	return func() { close(exited) }
}

// outcome reads the exit status and stdout.
func (r *Runner) outcome(waitErr error, stdout *capped, stderr *progressWriter) (any, error) {
	var exit *osexec.ExitError
	switch {
	case waitErr == nil:
	case errors.As(waitErr, &exit) && exit.ExitCode() == ExitTempFail:
		return nil, &worker.Error{Code: "exit_75", Err: fmt.Errorf("the command asked for a retry (exit 75): %s", stderr.tail())}
	case errors.As(waitErr, &exit) && exit.ExitCode() >= 0:
		return nil, &worker.Error{Code: "exit_" + strconv.Itoa(exit.ExitCode()), NoRetry: true,
			Err: fmt.Errorf("the command exited with status %d: %s", exit.ExitCode(), stderr.tail())}
	case errors.As(waitErr, &exit):
		return nil, &worker.Error{Code: "killed", Err: fmt.Errorf("the command was killed (%v): %s", exit, stderr.tail())}
	default:
		return nil, fmt.Errorf("waiting for the command: %w", waitErr)
	}
	if stdout.over {
		return nil, &worker.Error{Code: "result_too_large", NoRetry: true, Err: fmt.Errorf("stdout is over %d bytes", MaxStdout)}
	}
	out := bytes.TrimSpace(stdout.buf.Bytes())
	switch {
	case len(out) == 0:
		return nil, nil
	case jsonguard.Valid(out):
		return json.RawMessage(out), nil
	}
	return string(out), nil
}

// storeArtifacts uploads the regular files the command left in dir. The
// directory is read through os.Root, so a symlink cannot point outside it.
func (r *Runner) storeArtifacts(ctx context.Context, j *worker.Job, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue // directories, symlinks, devices: not artifacts
		}
		if err := storeOne(ctx, j, root, e.Name()); err != nil {
			return err
		}
	}
	return nil
}

func storeOne(ctx context.Context, j *worker.Job, root *os.Root, name string) error {
	if !errand.ValidArtifactName(name) {
		return &worker.Error{Code: "artifact_name", NoRetry: true,
			Err: fmt.Errorf("artifact %q: names are 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'", name)}
	}
	f, err := root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := f.Read(head)
	if _, err := f.Seek(0, 0); err != nil {
		return err
	}
	ct := mime.TypeByExtension(filepath.Ext(name))
	if ct == "" {
		ct = http.DetectContentType(head[:n])
	}
	if err := j.Artifact(ctx, name, ct, f); err != nil {
		var ee *errand.Error
		if errors.As(err, &ee) && ee.Code != errand.EINTERNAL && ee.Code != errand.EUNAVAILABLE && ee.Code != errand.ESTORAGEFULL {
			return &worker.Error{Code: "artifact_" + ee.Code, NoRetry: true, Err: fmt.Errorf("artifact %s: %s", name, ee.Message)}
		}
		return fmt.Errorf("store artifact %s: %w", name, err)
	}
	return nil
}

// capped keeps up to max bytes and notes whether more came.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room < len(p) {
		c.over = true
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.buf.Write(p)
}

// progressWriter turns stderr lines "progress: <percent> <message>" into progress
// reports and keeps the last StderrTail bytes for errors.
type progressWriter struct {
	ctx  context.Context
	job  *worker.Job
	line []byte
	last []byte
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.keep(p)
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		w.parse(string(w.line[:i]))
		w.line = w.line[i+1:]
	}
	if len(w.line) > 64<<10 {
		w.line = w.line[:0] // no newline in sight: not a progress line
	}
	return len(p), nil
}

func (w *progressWriter) keep(p []byte) {
	w.last = append(w.last, p...)
	if len(w.last) > StderrTail {
		w.last = w.last[len(w.last)-StderrTail:]
	}
}

func (w *progressWriter) flush() {
	if len(w.line) > 0 {
		w.parse(string(w.line))
		w.line = nil
	}
}

// parse reads one stderr line; anything but a well-formed progress line is just output.
func (w *progressWriter) parse(line string) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "progress:")
	if !ok {
		return
	}
	pct, msg, _ := strings.Cut(strings.TrimSpace(rest), " ")
	p, err := strconv.ParseFloat(strings.TrimSuffix(pct, "%"), 64)
	if err != nil || p < 0 || p > 100 {
		return
	}
	_ = w.job.Progress(w.ctx, p, truncate(strings.TrimSpace(msg), 1000))
}

func (w *progressWriter) tail() string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(w.last), "?"))
	if s == "" {
		return "(no stderr)"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
