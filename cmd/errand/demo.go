package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/errandhq/errand/config"
	"github.com/errandhq/errand/demo"
	"github.com/errandhq/errand/runner"
	"github.com/errandhq/errand/worker"
	"github.com/spf13/cobra"
)

func newDemoCmd(stdout, stderr io.Writer) *cobra.Command {
	var listen, dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Serve the report-generation demo: POST /generate-report → 202 → progress → a PDF (no auth, loopback)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, listen, dir, stdout, stderr)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	cmd.Flags().StringVar(&dir, "dir", "./errand-data", "where the demo keeps its SQLite database and artifacts")
	return cmd
}

// runDemo serves the demo until ctx ends.
func runDemo(ctx context.Context, listen, dir string, stdout, stderr io.Writer) error {
	db := filepath.Join(dir, "demo.db")
	cfg, err := config.Load(config.Source{YAML: []byte(demo.Config +
		fmt.Sprintf("listen: %q\nstore: %q\n", listen, "sqlite://"+db))})
	if err != nil {
		return err
	}
	a, err := startApp(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	w, err := worker.New(worker.Config{Transport: &runner.Transport{Q: a.queue}, Operations: []string{"generate-report"},
		Concurrency: 4, Name: "demo-report-worker", ShutdownTimeout: 5 * time.Second}, demo.Report)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	wctx, stopWorker := context.WithCancel(ctx)
	go func() { _ = w.Run(wctx); close(done) }()
	printDemoBanner(stdout, a.URL(), db)
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping…")
	stopWorker()
	<-done
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a.Stop(sctx)
}

func printDemoBanner(w io.Writer, url, db string) {
	fmt.Fprintf(w, `errand demo is running at %[1]s (data in %[2]s; Ctrl-C to stop)

Dashboard: %[1]s/ui/ (jobs live as they run, operations, channels, webhooks; no sign-in in the demo)

Ask for a report: errand answers 202 Accepted at once, with the job's URL in Location.
  curl -si %[1]s/generate-report -d '{"type":"monthly"}'

Poll the job: progress moves for a few seconds, then it has succeeded with the report's URL.
  curl -s %[1]s/v1/jobs/JOB_ID

Download the PDF:
  curl -so report.pdf %[1]s/v1/jobs/JOB_ID/artifacts/report.pdf

Or wait for the result in the same request (the hybrid mode):
  curl -s -H 'Prefer: wait=10' %[1]s/generate-report -d '{"type":"weekly"}'

Or use the CLI:
  go run ./cmd/errand submit generate-report --data '{"type":"monthly"}' --server %[1]s
  go run ./cmd/errand jobs watch JOB_ID --server %[1]s

Docs: %[1]s/docs (every operation with a curl line to paste; OpenAPI %[1]s/v1/openapi.json, AsyncAPI %[1]s/v1/asyncapi.json)
API: %[1]s/v1/operations   health: %[1]s/healthz
`, url, db)
}
