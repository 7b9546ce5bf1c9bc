package main

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/errandhq/errand"
	runexec "github.com/errandhq/errand/runner/exec"
	"github.com/errandhq/errand/worker"
	"github.com/spf13/cobra"
)

func newWorkerCmd(f *clientFlags, stderr io.Writer) *cobra.Command {
	var operation string
	var concurrency int
	var timeout, lease time.Duration
	cmd := &cobra.Command{
		Use:   "worker --operation <name> -- <command> [args…]",
		Short: "A pull worker that runs a local command per job (any language, no SDK)",
		Long: `Lease jobs of one operation from an errand server and run a command for each,
with the exec handler's conventions: the job's input on stdin, the result on stdout
(JSON, or else kept as a string), stderr lines "progress: <percent> <message>" as
progress, files written to $ERRAND_ARTIFACTS_DIR as artifacts; exit 0 succeeds,
exit 75 retries, any other exit fails the job with the end of stderr. A cancel or a
time-out ends the command's whole process group. Ctrl-C lets running jobs finish
(for up to 30s), then hands the rest back to the queue.`,
		Example: `  errand worker --operation render-invoice --concurrency 4 -- ./render-invoice --pdf
  errand worker --operation resize -- python3 resize.py`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if operation == "" {
				return errors.New("--operation is required")
			}
			op := errand.Operation{Name: operation, Timeout: timeout,
				Handler: errand.Handler{Type: errand.HandlerExec, Command: args}}.WithDefaults()
			w, err := worker.New(worker.Config{URL: f.server, Token: f.token, Operations: []string{operation},
				Concurrency: concurrency, Lease: lease, Logger: slog.New(slog.NewTextHandler(stderr, nil))}, runexec.New(op).Run)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			slog.New(slog.NewTextHandler(stderr, nil)).Info("working", "operation", operation, "server", f.server,
				"concurrency", concurrency, "command", args)
			return w.Run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&operation, "operation", "", "the operation to work (required)")
	fl.IntVar(&concurrency, "concurrency", 1, "commands running at once")
	fl.DurationVar(&timeout, "timeout", 10*time.Minute, "longest one command may run")
	fl.DurationVar(&lease, "lease", time.Minute, "lease length, renewed by heartbeats while the command runs")
	return cmd
}
