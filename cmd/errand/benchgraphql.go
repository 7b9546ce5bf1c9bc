package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/errandhq/errand/bench"
	"github.com/spf13/cobra"
)

// graphQLFigures are `errand bench graphql`'s results and the ratios its goals
// are stated in.
type graphQLFigures struct {
	Fanout []bench.FanoutResult `json:"fanout"`
	Reads  []bench.Result       `json:"reads"`
	Idle   []bench.ConnsResult  `json:"idle"`
	// FanoutRatio is GraphQL's deliveries a second over errand.v1's (goal ≥ 0.7).
	FanoutRatio float64 `json:"fanout_ratio"`
	// ReadRatio is job(id) requests a second over GET /v1/jobs/{id}'s (goal ≥ 0.6).
	ReadRatio float64 `json:"read_ratio"`
	// IdleBytes is the memory of an idle graphql-transport-ws subscriber (goal ≤ 48 KB).
	IdleBytes int64 `json:"idle_graphql_bytes"`
}

// graphQLBench are the flags of `errand bench graphql`.
type graphQLBench struct {
	subs, events, publishers, rounds, concurrency, idle int
	duration                                            time.Duration
	asJSON                                              bool
}

func newBenchGraphQLCmd(stdout io.Writer) *cobra.Command {
	var o graphQLBench
	cmd := &cobra.Command{Use: "graphql", Args: cobra.NoArgs,
		Short: "GraphQL against its REST and errand.v1 twins in one run: fan-out to graphql-transport-ws subscribers, job(id) reads, idle subscriber memory",
		RunE: func(cmd *cobra.Command, args []string) error {
			bench.RaiseFileLimit()
			self, err := os.Executable()
			if err != nil {
				return err
			}
			var f graphQLFigures
			if err := o.load(cmd.Context(), self, &f); err != nil {
				return err
			}
			for _, kind := range []string{"ws", "graphql"} {
				r, err := idleProcess(cmd.Context(), self, kind, o.idle)
				if err != nil {
					return err
				}
				f.Idle = append(f.Idle, r)
			}
			f.IdleBytes = f.Idle[1].BytesPerConn
			return o.print(stdout, &f)
		}}
	fl := cmd.Flags()
	fl.IntVar(&o.subs, "subscribers", 1000, "WebSocket subscribers of the fan-out")
	fl.IntVar(&o.events, "events", 200, "events each fan-out round publishes")
	fl.IntVar(&o.publishers, "publishers", 4, "publishers at once")
	fl.IntVar(&o.rounds, "rounds", 2, "alternating rounds of each fan-out and each read load")
	fl.IntVar(&o.concurrency, "concurrency", 32, "concurrent clients of the read loads")
	fl.DurationVar(&o.duration, "duration", 5*time.Second, "how long each read load lasts")
	fl.IntVar(&o.idle, "connections", 2000, "idle subscribers of each kind in the memory runs")
	fl.BoolVar(&o.asJSON, "json", false, "print JSON instead of tables")
	return cmd
}

// load runs the fan-outs and the reads, alternating, against one errand process.
func (o *graphQLBench) load(ctx context.Context, self string, f *graphQLFigures) error {
	dir, err := os.MkdirTemp("", "errand-bench-graphql-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := bench.StartProcess(self, dir, benchConfig+fmt.Sprintf("store: \"sqlite://%s/e.db\"\n", dir))
	if err != nil {
		return err
	}
	defer p.Stop()
	var plain, gql float64
	for i := range o.rounds {
		for _, proto := range []string{bench.ProtoErrand, bench.ProtoGraphQL} {
			name := map[string]string{bench.ProtoErrand: "ws", bench.ProtoGraphQL: "gql"}[proto]
			r, err := bench.WSFanout(ctx, p.URL, proto, fmt.Sprintf("bench.fan-%s-%d", name, i), o.subs, o.events, o.publishers)
			if err != nil {
				return err
			}
			f.Fanout = append(f.Fanout, r)
			if proto == bench.ProtoErrand {
				plain += r.DeliveriesSec
			} else {
				gql += r.DeliveriesSec
			}
		}
	}
	f.FanoutRatio = gql / plain
	id, err := benchJob(ctx, p.URL)
	if err != nil {
		return err
	}
	rest, q := bench.JobReads(p.URL, id, o.concurrency, o.duration)
	plain, gql = 0, 0
	for range o.rounds {
		a, b := bench.Run(ctx, rest), bench.Run(ctx, q)
		f.Reads = append(f.Reads, a, b)
		plain, gql = plain+a.PerSecond, gql+b.PerSecond
	}
	f.ReadRatio = gql / plain
	return nil
}

// benchJob submits the job the read loads read.
func benchJob(ctx context.Context, base string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/jobs", strings.NewReader(`{"operation":"bench","input":{"type":"monthly"},"metadata":{"k":"v"}}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var j struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || j.ID == "" {
		return "", fmt.Errorf("submit: %d %v", resp.StatusCode, err)
	}
	return j.ID, nil
}

// idleProcess measures idle subscribers of one kind on an errand process of
// their own (as `errand bench conns` does).
func idleProcess(ctx context.Context, self, kind string, n int) (bench.ConnsResult, error) {
	dir, err := os.MkdirTemp("", "errand-conns-")
	if err != nil {
		return bench.ConnsResult{}, err
	}
	defer os.RemoveAll(dir)
	p, err := bench.StartProcess(self, dir, benchConfig+fmt.Sprintf("store: \"sqlite://%s/e.db\"\n", dir), "GOGC=100")
	if err != nil {
		return bench.ConnsResult{}, err
	}
	defer p.Stop()
	return bench.IdleConns(ctx, p, kind, "bench.idle", n)
}

func (o *graphQLBench) print(w io.Writer, f *graphQLFigures) error {
	if o.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"machine": map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version(), "server": "own process, SQLite"}, "results": f})
	}
	fmt.Fprintf(w, "machine: %d CPUs, %s, server: own process, SQLite (synchronous=full)\n", runtime.NumCPU(), runtime.Version())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tevents\tdeliveries\tmissing\tseconds\tdeliveries/s\tp50 ms\tp99 ms\t")
	for _, x := range f.Fanout {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.0f\t%.1f\t%.1f\t\n", x.Name, x.Events, x.Deliveries, x.Missing, x.Seconds, x.DeliveriesSec, x.P50ms, x.P99ms)
	}
	fmt.Fprintf(tw, "graphql-transport-ws / errand.v1 (goal ≥ 0.7)\t\t\t\t\t%.2f\t\t\t\n\n", f.FanoutRatio)
	fmt.Fprintln(tw, "run\tclients\trequests\terrors\tper second\tp50 ms\tp99 ms\tmax ms\t")
	for _, x := range f.Reads {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t\n", x.Name, x.Concurrency, x.Requests, x.Errors, x.PerSecond, x.P50ms, x.P99ms, x.Maxms)
	}
	fmt.Fprintf(tw, "job(id) / GET /v1/jobs/{id} (goal ≥ 0.6)\t\t\t\t%.2f\t\t\t\t\n\n", f.ReadRatio)
	fmt.Fprintln(tw, "run\tconnections\tRSS before\tRSS after\tbytes each\tper GiB\t")
	for _, x := range f.Idle {
		fmt.Fprintf(tw, "%s\t%d\t%d MiB\t%d MiB\t%d\t%.0f\t\n", x.Name, x.Connections, x.RSSBefore>>20, x.RSSAfter>>20, x.BytesPerConn, x.PerGiB)
	}
	fmt.Fprintf(tw, "idle graphql-transport-ws subscriber (goal ≤ 49152 bytes)\t\t\t\t%d\t\t\n", f.IdleBytes)
	return tw.Flush()
}
