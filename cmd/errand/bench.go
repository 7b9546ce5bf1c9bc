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
	"slices"
	"strings"
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
	// auth, when set, is an auth: section the in-process server runs with
	// instead of development mode.
	auth string
	// store, when set (a postgres:// URL), is where the in-process servers keep
	// their data instead of a temporary SQLite file; nodes of them share it.
	store string
	nodes int
	// urls are the in-process nodes' URLs (the first is the target's).
	urls []string
	// telemetry and rounds: --telemetry runs in a telemetry mode, or in each
	// in turn (benchtelemetry.go); extra is configuration the in-process
	// server gets beside benchConfig (top-level keys).
	telemetry, extra string
	rounds           int
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
	f.StringVar(&o.store, "store", "", "run the in-process server on this postgres:// database (a fresh schema, dropped after) instead of SQLite")
	f.IntVar(&o.nodes, "nodes", 1, "with --store: how many in-process errand nodes share the database")
}

// benchConfig is what the in-process server serves.
const benchConfig = `
listen: "127.0.0.1:0"
log: { level: warn }
channels:
  "bench.*": { history: 1h }
operations:
  bench:
    input_schema: { type: object }
  bench-fair:
    input_schema: { type: object }
    fairness: { key: "input:/tenant" }
`

// target returns the URL to benchmark, starting an in-process server (with the
// extra operations, YAML under operations:) if needed, and the machine facts
// printed beside the figures.
func (o *benchOptions) target(ctx context.Context, stderr io.Writer, extraOps string) (string, map[string]any, func(), error) {
	facts := map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version(), "synchronous": o.synchronous}
	dir, cleanup, err := o.scratch(facts)
	if err != nil {
		return "", nil, cleanup, err
	}
	if o.server != "" {
		facts["server"] = o.server
		return o.server, facts, cleanup, nil
	}
	store := fmt.Sprintf("sqlite://%s?synchronous=%s", filepath.Join(dir, "errand.db"), o.synchronous)
	if o.store != "" {
		var drop func()
		if store, drop, err = benchSchema(ctx, o.store); err != nil {
			return "", nil, cleanup, err
		}
		rm := cleanup
		cleanup = func() { drop(); rm() }
		facts["synchronous"] = "PostgreSQL (its own settings)"
	}
	cfgText := benchConfig + extraOps + fmt.Sprintf("store: %q\n", store) + o.extra
	if o.auth != "" {
		cfgText += o.auth
	} else {
		cfgText += "dev: true\n"
	}
	cfg, err := config.Load(config.Source{YAML: []byte(cfgText)})
	if err != nil {
		return "", nil, cleanup, err
	}
	var apps []*app
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, a := range apps {
			a.Stop(sctx)
		}
		cleanup()
	}
	for range max(1, min(o.nodes, 16)) {
		a, err := startApp(ctx, cfg, newLogger(cfg, stderr))
		if err != nil {
			stop()
			return "", nil, func() {}, err
		}
		apps = append(apps, a)
		o.urls = append(o.urls, a.URL())
	}
	facts["server"] = "in-process, SQLite in " + dir
	if o.store != "" {
		facts["server"] = fmt.Sprintf("%d in-process node(s), PostgreSQL", len(apps))
	}
	return apps[0].URL(), facts, stop, nil
}

// scratch makes the run's temporary directory on the data disk, measures that
// disk's fsync rate into facts and starts the CPU profile if asked; cleanup
// undoes all of it.
func (o *benchOptions) scratch(facts map[string]any) (string, func(), error) {
	dir, err := bench.TempDir(o.dir)
	if err != nil {
		return "", func() {}, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	if rate, err := bench.FsyncRate(dir); err == nil {
		facts["fsyncs_per_second"] = int(rate)
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return dir, cleanup, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return dir, cleanup, err
		}
		rm := cleanup
		cleanup = func() { pprof.StopCPUProfile(); f.Close(); rm() }
	}
	return dir, cleanup, nil
}

func newBenchCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure errand over loopback HTTP (submit, cycle, latency)"}
	cmd.AddCommand(newBenchSubmitCmd(stdout, stderr), newBenchCycleCmd(stdout, stderr), newBenchLatencyCmd(stdout, stderr), newBenchUnluckyCmd(stdout, stderr),
		newBenchHandlerCmd("exec", stdout, stderr), newBenchHandlerCmd("http", stdout, stderr),
		newBenchFanoutCmd(stdout, stderr), newBenchStormCmd(stdout, stderr), newBenchConnsCmd(stdout), newBenchWatchCmd(stdout), newBenchQueuedCmd(stdout),
		newBenchWebhooksCmd(stdout), newBenchAuthCmd(stdout, stderr), newBenchGraphQLCmd(stdout), newBenchBridgeCmd(stdout, stderr),
		newBenchScrapeCmd(stdout), newBenchAdmissionCmd(stdout, stderr), newBenchUICmd(stdout))
	return cmd
}

func newBenchSubmitCmd(stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "submit",
		Short: "POST /v1/jobs → durable 202: throughput at full load, p50/p99 at half load, against a trivial net/http baseline",
		Args:  cobra.NoArgs,
		RunE: o.orTelemetry(stdout, stderr, "submit", func(ctx context.Context, url string, _ []string) (bench.Result, error) {
			return bench.Run(ctx, bench.Load{Name: "submit", URL: url + "/v1/jobs", Body: []byte(`{"operation":"bench","input":{"type":"monthly"}}`),
				Header: http.Header{"Content-Type": {"application/json"}}, Concurrency: o.concurrency, Duration: o.duration, WantStatus: 202}), nil
		}, func(ctx context.Context, url string, facts map[string]any) (any, error) {
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
	o.addTelemetryFlags(cmd)
	return cmd
}

func newBenchCycleCmd(stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	var workers, batch, submitBatch, tenants int
	var perJob, withLease, baseline bool
	cmd := &cobra.Command{
		Use:   "cycle",
		Short: "Submits while pull workers lease and complete (in batches, or one job a request with --per-job): completed jobs a second",
		Args:  cobra.NoArgs,
		RunE: o.orTelemetry(stdout, stderr, "cycle", func(ctx context.Context, url string, urls []string) (bench.Result, error) {
			if len(urls) == 0 {
				urls = []string{url}
			}
			r := bench.Cycle(ctx, urls, bench.CycleParams{Operation: "bench", Producers: o.concurrency, Workers: workers,
				Batch: batch, SubmitBatch: submitBatch, PerJob: perJob || withLease, WithLease: withLease, Duration: o.duration})
			return bench.Result{Concurrency: r.Producers, Requests: int(r.Completed), PerSecond: r.JobsPerSec,
				P50ms: r.CompleteP50ms, P99ms: r.CompleteP99ms}, nil
		}, func(ctx context.Context, url string, facts map[string]any) (any, error) {
			urls := o.urls
			if len(urls) == 0 {
				urls = []string{url}
			}
			var base bench.Result
			if baseline {
				var err error
				if base, err = bench.Baseline(ctx, bench.Load{Body: []byte(`{"operation":"bench","input":{"n":1}}`),
					Concurrency: o.concurrency, Duration: o.duration}); err != nil {
					return nil, err
				}
			}
			p := bench.CycleParams{Operation: "bench", Producers: o.concurrency, Workers: workers,
				Batch: batch, SubmitBatch: submitBatch, PerJob: perJob || withLease, WithLease: withLease, Duration: o.duration, Tenants: tenants}
			if tenants > 0 {
				return fairCycle(ctx, urls, p, o.rounds), nil
			}
			r := bench.Cycle(ctx, urls, p)
			if baseline && base.PerSecond > 0 {
				r.BaselinePerSec, r.VsBaseline = base.PerSecond, r.JobsPerSec/base.PerSecond
			}
			return r, nil
		}),
	}
	o.flags(cmd)
	cmd.Flags().IntVar(&workers, "workers", 4, "worker loops, each leasing and completing in batches (or one job at a time with --per-job)")
	cmd.Flags().IntVar(&batch, "batch", 200, "jobs per lease and per completion call")
	cmd.Flags().IntVar(&submitBatch, "submit-batch", 1, "jobs per submit request (above 1: POST /v1/job-batches)")
	cmd.Flags().BoolVar(&perJob, "per-job", false, "workers lease one job a request and complete it with POST /v1/leases/{id}/complete, as Python, Node and curl workers do")
	cmd.Flags().BoolVar(&withLease, "with-lease", false, "per-job workers send each completion in their next lease request (POST /v1/leases with completions): one request a job")
	cmd.Flags().BoolVar(&baseline, "baseline", false, "also measure a trivial net/http 202 server in the same run and print the cycle as a ratio of it")
	cmd.Flags().IntVar(&tenants, "fairness", 0, "jobs name this many tenants in turn (input.tenant, batches of at least that many): the cycle on an operation with fairness on them (bench-fair) and on plain FIFO (bench), in turn --rounds times, and the median of the rounds' ratios")
	o.addTelemetryFlags(cmd)
	return cmd
}

// fairCycle runs the cycle on plain FIFO (bench) and with fairness
// (bench-fair), in turn, rounds times (drift on a shared machine favours
// neither), and reports the fair runs' totals with the median of each
// round's ratio to its FIFO run.
func fairCycle(ctx context.Context, urls []string, p bench.CycleParams, rounds int) bench.CycleResult {
	var fifo, fair []bench.CycleResult
	var ratios []float64
	for range max(rounds, 1) {
		p.Operation = "bench"
		a := bench.Cycle(ctx, urls, p)
		p.Operation = "bench-fair"
		b := bench.Cycle(ctx, urls, p)
		fifo, fair = append(fifo, a), append(fair, b)
		ratios = append(ratios, b.JobsPerSec/max(a.JobsPerSec, 1))
	}
	sum := func(rs []bench.CycleResult) (c, s int64, secs float64) {
		for _, r := range rs {
			c, s, secs = c+r.Completed, s+r.Submitted, secs+r.Seconds
		}
		return c, s, secs
	}
	r := fair[0]
	c, s, secs := sum(fair)
	r.Name = fmt.Sprintf("full cycle, fairness over %d tenants", p.Tenants)
	r.Completed, r.Submitted, r.Seconds, r.JobsPerSec, r.SubmitPerSec = c, s, secs, float64(c)/secs, float64(s)/secs
	fc, _, fsecs := sum(fifo)
	r.FIFOPerSec = float64(fc) / fsecs
	slices.Sort(ratios)
	r.VsFIFO = ratios[len(ratios)/2]
	return r
}

// newBenchUnluckyCmd measures fairness' promise: one tenant floods, another's
// job is leased soon all the same.
func newBenchUnluckyCmd(stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	var samples int
	var flood int64
	cmd := &cobra.Command{
		Use:   "unlucky",
		Short: "One tenant floods an operation with fairness; another's job, submit → leased: p50/p99",
		Args:  cobra.NoArgs,
		RunE: o.runE(stdout, stderr, func(ctx context.Context, url string, _ map[string]any) (any, error) {
			return bench.Unlucky(ctx, url, "bench-fair", flood, samples)
		}),
	}
	o.flags(cmd)
	cmd.Flags().Int64Var(&flood, "flood", 100_000, "jobs the flooding tenant queues first")
	cmd.Flags().IntVar(&samples, "samples", 200, "the unlucky tenant's jobs to time, one at a time")
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

// processE is runE with errand as its own process (unless --server is given):
// with many connections each side needs its own open-file limit.
func (o *benchOptions) processE(stdout io.Writer, measure func(ctx context.Context, url string, facts map[string]any) (any, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		facts := map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version(), "synchronous": o.synchronous,
			"open_files": bench.RaiseFileLimit()}
		dir, cleanup, err := o.scratch(facts)
		defer cleanup()
		if err != nil {
			return err
		}
		url := o.server
		if url == "" {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			p, err := bench.StartProcess(self, dir, benchConfig+fmt.Sprintf("store: \"sqlite://%s/e.db?synchronous=%s\"\n", dir, o.synchronous))
			if err != nil {
				return err
			}
			defer p.Stop()
			url, facts["server"] = p.URL, "own process, SQLite in "+dir
		} else {
			facts["server"] = url
		}
		results, err := measure(cmd.Context(), url, facts)
		if err != nil {
			return err
		}
		return report(stdout, o.asJSON, facts, results)
	}
}

func newBenchQueuedCmd(stdout io.Writer) *cobra.Command {
	var o benchOptions
	var jobs int64
	var leases int
	cmd := &cobra.Command{Use: "queued", Short: "A deep queue: fill it (bulk submits), restart errand over it, time until ready, RSS, and lease latency at that depth",
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
			facts := map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version(), "synchronous": o.synchronous}
			dir, cleanup, err := o.scratch(facts)
			defer cleanup()
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			store := fmt.Sprintf("sqlite://%s/e.db?synchronous=%s", dir, o.synchronous)
			facts["server"] = "own process, SQLite in " + dir
			if o.store != "" {
				var drop func()
				if store, drop, err = benchSchema(cmd.Context(), o.store); err != nil {
					return err
				}
				defer drop()
				facts["server"], facts["synchronous"] = "own process, PostgreSQL", "PostgreSQL (its own settings)"
			}
			start := func() (*bench.Process, error) {
				return bench.StartProcess(self, dir, benchConfig+fmt.Sprintf("store: %q\n", store))
			}
			r, err := bench.Queued(cmd.Context(), start, "bench", jobs, leases)
			if err != nil {
				return err
			}
			return report(stdout, o.asJSON, facts, r)
		}}
	o.flags(cmd)
	cmd.Flags().Int64Var(&jobs, "jobs", 1_000_000, "queued jobs to fill the store with")
	cmd.Flags().IntVar(&leases, "leases", 500, "jobs leased one at a time (and completed) at that depth, for the lease latency")
	return cmd
}

func newBenchFanoutCmd(stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	var subs, events, publishers int
	cmd := &cobra.Command{Use: "fanout", Short: "One channel to many SSE subscribers: deliveries a second, publish-to-receive p50/p99", Args: cobra.NoArgs}
	cmd.RunE = o.processE(stdout, func(ctx context.Context, url string, facts map[string]any) (any, error) {
		var out []bench.FanoutResult
		for _, n := range []int{subs / 10, subs} {
			r, err := bench.Fanout(ctx, url, fmt.Sprintf("bench.fan%d", n), n, events, publishers)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	})
	o.flags(cmd)
	cmd.Flags().IntVar(&subs, "subscribers", 10000, "subscribers in the large run (the small run has a tenth)")
	cmd.Flags().IntVar(&events, "events", 100, "events published")
	cmd.Flags().IntVar(&publishers, "publishers", 4, "publishers at once")
	return cmd
}

func newBenchStormCmd(stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	var subs, events int
	cmd := &cobra.Command{Use: "storm", Short: "Every SSE subscriber drops and reconnects at once with Last-Event-ID: none may lose or repeat an event", Args: cobra.NoArgs}
	cmd.RunE = o.processE(stdout, func(ctx context.Context, url string, facts map[string]any) (any, error) {
		return bench.Storm(ctx, url, "bench.storm", subs, events)
	})
	o.flags(cmd)
	cmd.Flags().IntVar(&subs, "subscribers", 10000, "subscribers")
	cmd.Flags().IntVar(&events, "events", 20, "events in all (half before the drop, half while away)")
	return cmd
}

func newBenchWatchCmd(stdout io.Writer) *cobra.Command {
	var o benchOptions
	var jobs int
	cmd := &cobra.Command{Use: "watch", Short: "Many jobs, each watched over its own SSE stream, completed by a batched worker", Args: cobra.NoArgs}
	cmd.RunE = o.processE(stdout, func(ctx context.Context, url string, _ map[string]any) (any, error) {
		return bench.Watch(ctx, url, "bench", jobs)
	})
	o.flags(cmd)
	cmd.Flags().IntVar(&jobs, "jobs", 10000, "jobs, each with its own subscriber")
	return cmd
}

func newBenchWebhooksCmd(stdout io.Writer) *cobra.Command {
	var o benchOptions
	var events, publishers, rate, fast int
	var steadyFor time.Duration
	cmd := &cobra.Command{Use: "webhooks", Short: "Signed webhook deliveries to a local receiver, every attempt stored: a burst, a steady rate, and one endpoint that never answers among fast ones", Args: cobra.NoArgs}
	cmd.RunE = o.processE(stdout, func(ctx context.Context, url string, facts map[string]any) (any, error) {
		var out []bench.WebhookResult
		for _, run := range []func() (bench.WebhookResult, error){
			func() (bench.WebhookResult, error) { return bench.WebhookBaseline(ctx, events, publishers) },
			func() (bench.WebhookResult, error) {
				return bench.WebhookThroughput(ctx, url, "bench.wh-burst", events, publishers)
			},
			func() (bench.WebhookResult, error) {
				return bench.WebhookSteady(ctx, url, "bench.wh-steady", 1, false, rate, steadyFor)
			},
			func() (bench.WebhookResult, error) {
				return bench.WebhookSteady(ctx, url, "bench.wh-fast", fast, false, rate/fast, steadyFor)
			},
			func() (bench.WebhookResult, error) {
				return bench.WebhookSteady(ctx, url, "bench.wh-slow", fast, true, rate/fast, steadyFor)
			},
		} {
			r, err := run()
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		facts["burst_vs_baseline"] = fmt.Sprintf("%.2f", out[1].PerSecond/out[0].PerSecond)
		return out, nil
	})
	o.flags(cmd)
	cmd.Flags().IntVar(&events, "events", 20000, "events in the burst")
	cmd.Flags().IntVar(&publishers, "publishers", 16, "publishers at once in the burst")
	cmd.Flags().IntVar(&rate, "rate", 1000, "deliveries a second in the steady runs")
	cmd.Flags().IntVar(&fast, "endpoints", 20, "fast endpoints beside the one that never answers")
	cmd.Flags().DurationVar(&steadyFor, "steady", 10*time.Second, "how long the steady runs publish")
	return cmd
}

func newBenchConnsCmd(stdout io.Writer) *cobra.Command {
	var n int
	var asJSON bool
	cmd := &cobra.Command{Use: "conns", Short: "Server memory per idle SSE and WebSocket subscriber (errand runs as its own process)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bench.RaiseFileLimit()
			self, err := os.Executable()
			if err != nil {
				return err
			}
			var out []bench.ConnsResult
			for _, kind := range []string{"sse", "ws"} {
				dir, err := os.MkdirTemp("", "errand-conns-")
				if err != nil {
					return err
				}
				p, err := bench.StartProcess(self, dir, benchConfig+fmt.Sprintf("store: \"sqlite://%s/e.db\"\n", dir), "GOGC=100")
				if err != nil {
					return err
				}
				r, err := bench.IdleConns(cmd.Context(), p, kind, "bench.idle", n)
				p.Stop()
				os.RemoveAll(dir)
				if err != nil {
					return err
				}
				out = append(out, r)
			}
			return report(stdout, asJSON, map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version(), "server": "own process, GOGC=100"}, out)
		}}
	cmd.Flags().IntVar(&n, "connections", 10000, "idle subscribers of each kind")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
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
		for _, k := range []string{"submit_vs_baseline", "api_key_vs_off", "jwt_vs_off", "bare_vs_off", "metrics_vs_off", "tracing_vs_off"} {
			if v, ok := facts[k]; ok {
				fmt.Fprintf(tw, "%s\t%v\t\t\t\t\t\t\t\n", strings.ReplaceAll(k, "_vs_", " / "), v)
			}
		}
	case *bridgeFigures:
		fmt.Fprintf(tw, "%s client's confirmed publishes/s\t%.0f\t\n", r.Broker, r.ClientPerSec)
		fmt.Fprintf(tw, "errand channel publishes/s (no bridge)\t%.0f\t\n", r.PlainPerSec)
		fmt.Fprintf(tw, "errand channel publishes/s (bridged)\t%.0f\t\n", r.PublishPerSec)
		fmt.Fprintf(tw, "errand → %s confirmed events/s\t%.0f\t\n", r.Broker, r.BridgePerSec)
		fmt.Fprintf(tw, "bridge / client, bridge / errand publish\t%.2f, %.2f\t\n", r.VsClient, r.VsPlain)
		fmt.Fprintf(tw, "publish → broker p50, p99 ms\t%.2f, %.2f\t\n", r.P50ms, r.P99ms)
		fmt.Fprintf(tw, "%s → channel messages/s\t%.0f\t\n", r.Broker, r.InPerSec)
	case bench.CycleResult:
		fmt.Fprintln(tw, "run\tproducers×jobs\tworkers×batch\tsubmitted\tcompleted\tjobs/s\tsubmits/s\t")
		fmt.Fprintf(tw, "%s\t%d×%d\t%d×%d\t%d\t%d\t%.0f\t%.0f\t\n", r.Name, r.Producers, r.SubmitBatch, r.Workers, r.Batch, r.Submitted, r.Completed, r.JobsPerSec, r.SubmitPerSec)
		if r.PerJob {
			fmt.Fprintf(tw, "one completion: p50 %.2f ms, p99 %.2f ms\t\t\t\t\t\t\t\n", r.CompleteP50ms, r.CompleteP99ms)
		}
		if r.FIFOPerSec > 0 {
			fmt.Fprintf(tw, "plain FIFO, same load\t\t\t\t\t%.0f\t\t\n", r.FIFOPerSec)
			fmt.Fprintf(tw, "fairness / FIFO (median of rounds)\t\t\t\t\t%.3f\t\t\n", r.VsFIFO)
		}
		if r.BaselinePerSec > 0 {
			fmt.Fprintf(tw, "baseline: net/http trivial 202\t%d\t\t\t\t%.0f\t\t\n", r.Producers, r.BaselinePerSec)
			fmt.Fprintf(tw, "cycle / baseline\t\t\t\t\t%.3f\t\t\n", r.VsBaseline)
		}
	case bench.DrainResult:
		fmt.Fprintln(tw, "run\tworkers\tsubmitted\tsucceeded\tseconds\tjobs/s\t")
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%.0f\t\n", r.Name, r.Workers, r.Submitted, r.Succeeded, r.Seconds, r.JobsPerSec)
		fmt.Fprintf(tw, "baseline: %s\t%d\t\t\t\t%.0f\t\n", r.BaselineName, r.Workers, r.Baseline)
		fmt.Fprintf(tw, "errand / baseline\t\t\t\t\t%.2f\t\n", r.JobsPerSec/r.Baseline)
	case []bench.FanoutResult:
		fmt.Fprintln(tw, "run\tevents\tdeliveries\tmissing\tseconds\tdeliveries/s\tp50 ms\tp99 ms\t")
		for _, x := range r {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.0f\t%.1f\t%.1f\t\n", x.Name, x.Events, x.Deliveries, x.Missing, x.Seconds, x.DeliveriesSec, x.P50ms, x.P99ms)
		}
	case bench.QueuedResult:
		fmt.Fprintln(tw, "run\tjobs\tfill s\tfill jobs/s\tstart s\tRSS idle\tRSS after leases\tlease p50 ms\tlease p99 ms\t")
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.0f\t%.2f\t%d MiB\t%d MiB\t%.2f\t%.2f\t\n", r.Name, r.Jobs, r.FillSeconds, r.FillPerSec,
			r.StartSeconds, r.RSSIdle>>20, r.RSSAfterLease>>20, r.LeaseP50ms, r.LeaseP99ms)
	case bench.WatchResult:
		fmt.Fprintln(tw, "run\tstreams finished\tevents\tseconds\tjobs/s\t")
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.0f\t\n", r.Name, r.Finished, r.Events, r.Seconds, r.JobsPerSec)
	case bench.StormResult:
		fmt.Fprintln(tw, "run\tevents\tlost\tduplicated\treconnect s\t")
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t\n", r.Name, r.Events, r.Lost, r.Duplicated, r.ReconnectS)
	case []bench.ConnsResult:
		fmt.Fprintln(tw, "run\tconnections\tRSS before\tRSS after\tbytes each\tper GiB\t")
		for _, x := range r {
			fmt.Fprintf(tw, "%s\t%d\t%d MiB\t%d MiB\t%d\t%.0f\t\n", x.Name, x.Connections, x.RSSBefore>>20, x.RSSAfter>>20, x.BytesPerConn, x.PerGiB)
		}
	case []bench.WebhookResult:
		fmt.Fprintln(tw, "run\tendpoints\tevents\tdeliveries\tseconds\tdeliveries/s\tp50 ms\tp99 ms\t")
		for _, x := range r {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.0f\t%.1f\t%.1f\t\n", x.Name, x.Endpoints, x.Events, x.Deliveries, x.Seconds, x.PerSecond, x.P50ms, x.P99ms)
		}
		fmt.Fprintf(tw, "burst / baseline\t\t\t\t\t%v\t\t\t\n", facts["burst_vs_baseline"])
	case bench.LatencyResult:
		fmt.Fprintln(tw, "run\tsamples\tp50 ms\tp99 ms\tmax ms\t")
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t\n", r.Name, r.Samples, r.P50ms, r.P99ms, r.Maxms)
	}
	return tw.Flush()
}
