package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"text/tabwriter"
	"time"

	"github.com/errandhq/errand/bench"
	"github.com/errandhq/errand/config"
	"github.com/spf13/cobra"
)

// benchOptions are the flags every benchmark takes.
type benchOptions struct {
	server      string
	dir         string
	duration    time.Duration
	concurrency int
	synchronous string
	asJSON      bool
	cpuprofile  string
}

func (o *benchOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "benchmark a running errand at this URL (default: start one in-process on SQLite)")
	f.StringVar(&o.dir, "dir", "./errand-data", "where the in-process server keeps its (temporary) database")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "how long each run lasts")
	f.IntVar(&o.concurrency, "concurrency", 64, "concurrent clients")
	f.StringVar(&o.synchronous, "synchronous", "full", "SQLite synchronous mode of the in-process server: full (durable), normal or off")
	f.BoolVar(&o.asJSON, "json", false, "print JSON instead of a table")
	f.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run (server and load) to this file")
}

// benchConfig is what the in-process server serves.
const benchConfig = `
listen: "127.0.0.1:0"
log: { level: warn }
operations:
  bench:
    input_schema: { type: object }
`

// target returns the URL to benchmark, starting an in-process server (with the
// extra operations, YAML under operations:) if needed, and the machine facts
// printed beside the figures.
func (o *benchOptions) target(ctx context.Context, stderr io.Writer, extraOps string) (string, map[string]any, func(), error) {
	facts := map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version(), "synchronous": o.synchronous}
	dir, err := bench.TempDir(o.dir)
	if err != nil {
		return "", nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return "", nil, cleanup, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return "", nil, cleanup, err
		}
		rm := cleanup
		cleanup = func() { pprof.StopCPUProfile(); f.Close(); rm() }
	}
	if rate, err := bench.FsyncRate(dir); err == nil {
		facts["fsyncs_per_second"] = int(rate)
	}
	if o.server != "" {
		facts["server"] = o.server
		return o.server, facts, cleanup, nil
	}
	cfgText := benchConfig + extraOps + fmt.Sprintf("store: \"sqlite://%s?synchronous=%s\"\ndev: true\n", filepath.Join(dir, "errand.db"), o.synchronous)
	cfg, err := config.Load(config.Source{YAML: []byte(cfgText)})
	if err != nil {
		return "", nil, cleanup, err
	}
	a, err := startApp(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return "", nil, cleanup, err
	}
	facts["server"] = "in-process, SQLite in " + dir
	return a.URL(), facts, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Stop(sctx)
		cleanup()
	}, nil
}

func newBenchCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure errand over loopback HTTP (submit, cycle, latency)"}
	cmd.AddCommand(newBenchSubmitCmd(stdout, stderr), newBenchCycleCmd(stdout, stderr), newBenchLatencyCmd(stdout, stderr),
		newBenchHandlerCmd("exec", stdout, stderr), newBenchHandlerCmd("http", stdout, stderr))
	return cmd
}

func newBenchSubmitCmd(stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "submit",
		Short: "POST /v1/jobs → durable 202: throughput at full load, p50/p99 at half load, against a trivial net/http baseline",
		Args:  cobra.NoArgs,
		RunE: o.runE(stdout, stderr, func(ctx context.Context, url string, facts map[string]any) (any, error) {
			l := bench.Load{Name: "submit: full load", URL: url + "/v1/jobs", Body: []byte(`{"operation":"bench","input":{"type":"monthly"}}`),
				Header: http.Header{"Content-Type": {"application/json"}}, Concurrency: o.concurrency, Duration: o.duration, WantStatus: 202}
			base, err := bench.Baseline(ctx, l)
			if err != nil {
				return nil, err
			}
			full := bench.Run(ctx, l)
			half := l
			half.Name, half.Rate = "submit: half load", full.PerSecond/2
			h := bench.Run(ctx, half)
			facts["submit_vs_baseline"] = fmt.Sprintf("%.2f", full.PerSecond/base.PerSecond)
			return []bench.Result{base, full, h}, nil
		}),
	}
	o.flags(cmd)
	return cmd
}

func newBenchCycleCmd(stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	var workers, batch int
	cmd := &cobra.Command{
		Use:   "cycle",
		Short: "Submits while batched pull workers lease and complete: completed jobs a second",
		Args:  cobra.NoArgs,
		RunE: o.runE(stdout, stderr, func(ctx context.Context, url string, _ map[string]any) (any, error) {
			return bench.Cycle(ctx, url, "bench", o.concurrency, workers, batch, o.duration), nil
		}),
	}
	o.flags(cmd)
	cmd.Flags().IntVar(&workers, "workers", 4, "worker loops, each leasing and completing in batches")
	cmd.Flags().IntVar(&batch, "batch", 200, "jobs per lease and per completion call")
	return cmd
}

func newBenchLatencyCmd(stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	var samples int
	cmd := &cobra.Command{
		Use:   "latency",
		Short: "Submit → a long-polling worker has the job, on an idle server: p50/p99",
		Args:  cobra.NoArgs,
		RunE: o.runE(stdout, stderr, func(ctx context.Context, url string, _ map[string]any) (any, error) {
			return bench.Latency(ctx, url, "bench", samples)
		}),
	}
	o.flags(cmd)
	cmd.Flags().IntVar(&samples, "samples", 1000, "jobs to time")
	return cmd
}

// runE makes a benchmark command's RunE: it finds the target, runs measure against
// its URL and reports.
func (o *benchOptions) runE(stdout, stderr io.Writer, measure func(ctx context.Context, url string, facts map[string]any) (any, error)) func(*cobra.Command, []string) error {
	return o.runWith(stdout, stderr, func() string { return "" }, measure)
}

// runWith is runE with extra operations for the in-process server, made when the
// command runs (a target's URL is known only then).
func (o *benchOptions) runWith(stdout, stderr io.Writer, extraOps func() string, measure func(ctx context.Context, url string, facts map[string]any) (any, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		url, facts, stop, err := o.target(cmd.Context(), stderr, extraOps())
		if err != nil {
			return err
		}
		defer stop()
		results, err := measure(cmd.Context(), url, facts)
		if err != nil {
			return err
		}
		return report(stdout, o.asJSON, facts, results)
	}
}

// newBenchHandlerCmd measures a handler errand runs itself: exec runs `true` per
// job; http calls a trivial JSON target on loopback.
func newBenchHandlerCmd(kind string, stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	var workers int
	short := map[string]string{"exec": "Full cycle with the exec handler running `true` per job",
		"http": "Full cycle with the http handler calling a local JSON target per job"}[kind]
	var target *httptest.Server
	cmd := &cobra.Command{Use: kind, Short: short, Args: cobra.NoArgs}
	cmd.RunE = o.runWith(stdout, stderr, func() string {
		handler := `{ type: exec, command: ["true"] }`
		if kind == "http" {
			target = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"ok":true}`)
			}))
			handler = fmt.Sprintf(`{ type: http, url: %q, workers: %d }`, target.URL, workers)
		} else {
			handler = fmt.Sprintf(`{ type: exec, command: ["true"], workers: %d }`, workers)
		}
		return fmt.Sprintf("  bench-%s:\n    handler: %s\n", kind, handler)
	}, func(ctx context.Context, url string, _ map[string]any) (any, error) {
		var base float64
		var baseName string
		if target != nil {
			defer target.Close()
			base, baseName = bench.HTTPBaseline(target.URL, workers, 2*time.Second), "the target called directly"
		} else {
			base, baseName = bench.ExecBaseline(workers, 2*time.Second), "fork/exec of `true` alone"
		}
		r, err := bench.Drain(ctx, "full cycle, "+kind+" handler", url, "bench-"+kind, o.concurrency, workers, o.duration)
		r.Baseline, r.BaselineName = base, baseName
		return r, err
	})
	o.flags(cmd)
	cmd.Flags().IntVar(&workers, "workers", 8, "jobs the handler runs at once")
	return cmd
}

// report prints the results as a table, or as JSON.
func report(w io.Writer, asJSON bool, facts map[string]any, results any) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"machine": facts, "results": results})
	}
	fmt.Fprintf(w, "machine: %d CPUs, %s, fsync %v/s, SQLite synchronous=%s, server: %s\n",
		facts["cpus"], facts["go"], facts["fsyncs_per_second"], facts["synchronous"], facts["server"])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	switch r := results.(type) {
	case []bench.Result:
		fmt.Fprintln(tw, "run\tclients\trequests\terrors\tper second\tp50 ms\tp99 ms\tmax ms\t")
		for _, x := range r {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t\n", x.Name, x.Concurrency, x.Requests, x.Errors, x.PerSecond, x.P50ms, x.P99ms, x.Maxms)
		}
		if v, ok := facts["submit_vs_baseline"]; ok {
			fmt.Fprintf(tw, "submit / baseline\t%v\t\t\t\t\t\t\t\n", v)
		}
	case bench.CycleResult:
		fmt.Fprintln(tw, "run\tproducers\tworkers×batch\tsubmitted\tcompleted\tjobs/s\tsubmits/s\t")
		fmt.Fprintf(tw, "%s\t%d\t%d×%d\t%d\t%d\t%.0f\t%.0f\t\n", r.Name, r.Producers, r.Workers, r.Batch, r.Submitted, r.Completed, r.JobsPerSec, r.SubmitPerSec)
	case bench.DrainResult:
		fmt.Fprintln(tw, "run\tworkers\tsubmitted\tsucceeded\tseconds\tjobs/s\t")
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%.0f\t\n", r.Name, r.Workers, r.Submitted, r.Succeeded, r.Seconds, r.JobsPerSec)
		fmt.Fprintf(tw, "baseline: %s\t%d\t\t\t\t%.0f\t\n", r.BaselineName, r.Workers, r.Baseline)
		fmt.Fprintf(tw, "errand / baseline\t\t\t\t\t%.2f\t\n", r.JobsPerSec/r.Baseline)
	case bench.LatencyResult:
		fmt.Fprintln(tw, "run\tsamples\tp50 ms\tp99 ms\tmax ms\t")
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t\n", r.Name, r.Samples, r.P50ms, r.P99ms, r.Maxms)
	}
	return tw.Flush()
}
