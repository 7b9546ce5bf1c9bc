package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/errandhq/errand/bench"
	"github.com/errandhq/errand/telemetry/otlptest"
	"github.com/spf13/cobra"
)

// The telemetry modes of `errand bench submit|cycle --telemetry`: what the
// in-process server runs with. bare has everything off; off has metrics and
// tracing off (usage analytics on, as by default); metrics is the default
// configuration; tracing adds tracing at 100 % sampling to a receiver in the
// benchmark's process.
var telemetryModes = []string{"bare", "off", "metrics", "tracing"}

// telemetryConfig is the configuration of a mode (receiver: the OTLP receiver's URL).
func telemetryConfig(mode, receiver string) string {
	switch mode {
	case "bare":
		return "metrics: { enabled: false }\nusage: { enabled: false }\n"
	case "off":
		return "metrics: { enabled: false }\n"
	case "tracing":
		return fmt.Sprintf("tracing: { endpoint: %q, sample_ratio: 1 }\n", receiver)
	}
	return ""
}

// addTelemetryFlags adds --telemetry and --rounds.
func (o *benchOptions) addTelemetryFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.telemetry, "telemetry", "", "run in a telemetry mode: bare (metrics, tracing, usage off), off (metrics and tracing off), "+
		"metrics (the default configuration), tracing (and tracing at 100 % to a local receiver); compare runs them in turn and reports their ratios to off")
	cmd.Flags().IntVar(&o.rounds, "rounds", 3, "with --telemetry compare: how many times to run the modes, in turn (the medians are reported)")
}

// orTelemetry is a benchmark's RunE: with --telemetry, figure in each mode
// (telemetryRun); without, measure as the command always does.
func (o *benchOptions) orTelemetry(stdout, stderr io.Writer, name string,
	figure func(ctx context.Context, url string, urls []string) (bench.Result, error),
	measure func(ctx context.Context, url string, facts map[string]any) (any, error)) func(*cobra.Command, []string) error {
	normal := o.runE(stdout, stderr, measure)
	return func(cmd *cobra.Command, args []string) error {
		if o.telemetry == "" {
			return normal(cmd, args)
		}
		return o.telemetryRun(cmd.Context(), stdout, stderr, name, figure)
	}
}

// telemetryRun runs measure (its PerSecond is the figure: higher is better) against a
// server in each mode, rounds times in turn (drift on a shared machine and the
// first run's warm-up favour no mode), and reports each run and the medians'
// ratios to off.
func (o *benchOptions) telemetryRun(ctx context.Context, stdout, stderr io.Writer, name string,
	measure func(ctx context.Context, url string, urls []string) (bench.Result, error)) error {
	if o.server != "" {
		return fmt.Errorf("--telemetry starts its own servers (one per mode); --server is not supported")
	}
	rcv := otlptest.New(false)
	defer rcv.Close()
	modes := telemetryModes
	if o.telemetry != "compare" {
		if !slices.Contains(modes, o.telemetry) {
			return fmt.Errorf("--telemetry must be bare, off, metrics, tracing or compare, not %q", o.telemetry)
		}
		modes, o.rounds = []string{o.telemetry}, 1
	}
	per := map[string][]float64{}
	var facts map[string]any
	var results []bench.Result
	for round := range max(o.rounds, 1) {
		for _, mode := range modes {
			run := *o
			run.extra, run.urls = telemetryConfig(mode, rcv.URL), nil
			url, f, stop, err := run.target(ctx, stderr, "")
			if err != nil {
				return fmt.Errorf("%s: %w", mode, err)
			}
			r, err := measure(ctx, url, run.urls)
			stop()
			if err != nil {
				return fmt.Errorf("%s: %w", mode, err)
			}
			facts = f
			per[mode] = append(per[mode], r.PerSecond)
			r.Name = fmt.Sprintf("%s, telemetry %s (round %d)", name, mode, round+1)
			results = append(results, r)
		}
	}
	for _, mode := range modes {
		facts[mode+"_median_per_second"] = fmt.Sprintf("%.0f", median(per[mode]))
		if mode != "off" && len(per["off"]) > 0 {
			facts[mode+"_vs_off"] = fmt.Sprintf("%.3f", median(per[mode])/median(per["off"]))
		}
	}
	facts["spans_received_bytes"] = rcv.Bytes()
	return report(stdout, o.asJSON, facts, results)
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// newBenchScrapeCmd measures GET /metrics on a server with many operations,
// each with series, and many open event streams.
func newBenchScrapeCmd(stdout io.Writer) *cobra.Command {
	var ops, conns, scrapes int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "scrape",
		Short: "GET /metrics on a server with 200 operations (each with jobs) and 10,000 open SSE streams: p50/p99 (errand runs as its own process)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bench.RaiseFileLimit()
			self, err := os.Executable()
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "errand-scrape-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			var b strings.Builder
			b.WriteString("listen: \"127.0.0.1:0\"\nlog: { level: warn }\nmetrics: { queue_interval: 100ms }\nchannels:\n  \"bench.*\": { history: 1h }\n")
			for i := range ops {
				fmt.Fprintf(&b, "  \"ch%03d.*\": {}\n", i)
			}
			b.WriteString("operations:\n")
			names := make([]string, ops)
			for i := range ops {
				names[i] = fmt.Sprintf("op-%03d", i)
				fmt.Fprintf(&b, "  %s: {}\n", names[i])
			}
			fmt.Fprintf(&b, "store: \"sqlite://%s/e.db\"\n", dir)
			p, err := bench.StartProcess(self, dir, b.String())
			if err != nil {
				return err
			}
			defer p.Stop()
			rs, err := bench.Scrape(cmd.Context(), p, names, "bench.idle", conns, scrapes, 150*time.Millisecond)
			if err != nil {
				return err
			}
			if asJSON {
				return report(stdout, true, map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version()}, rs)
			}
			fmt.Fprintf(stdout, "machine: %d CPUs, %s; errand as its own process; every scrape reads the queue (interval 100 ms)\n", runtime.NumCPU(), runtime.Version())
			fmt.Fprintln(stdout, "run\toperations\tconnections (errand counts)\tscrapes\tseries\tbytes\tp50 ms\tp99 ms\tmax ms")
			for _, r := range rs {
				size := r.Bytes
				if r.GzipBytes > 0 {
					size = r.GzipBytes
				}
				fmt.Fprintf(stdout, "%s\t%d\t%d (%d)\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\n", r.Name, r.Operations, r.Connections,
					max(r.StreamsSeen, rs[len(rs)-1].StreamsSeen), r.Scrapes, max(r.Series, rs[len(rs)-1].Series), size, r.P50ms, r.P99ms, r.Maxms)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&ops, "operations", 200, "declared operations (and as many channel patterns), each with a job done")
	cmd.Flags().IntVar(&conns, "connections", 10000, "idle SSE subscribers held open while scraping")
	cmd.Flags().IntVar(&scrapes, "scrapes", 50, "scrapes timed, of each kind")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}
