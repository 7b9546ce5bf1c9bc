package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/errandhq/errand/bench"
	"github.com/spf13/cobra"
)

// admissionOps are the bench admission operations: the same as bench, one
// with a rate limit it never reaches (every submit takes a token from its
// principal's bucket: in the process on SQLite, in PostgreSQL's unlogged
// table with --store).
const admissionOps = `  bench-limited:
    input_schema: { type: object }
    rate_limit: { rate: "100000/s", burst: 100000 }
  bench-bounded:
    input_schema: { type: object }
    max_queued: 1000000
`

// admissionFigures are bench admission's results: each run, the medians
// and the ratio of the limited to the unlimited throughput.
type admissionFigures struct {
	Runs          []bench.Result `json:"runs"`
	Unlimited     bench.Result   `json:"unlimited_median"`
	Limited       bench.Result   `json:"limited_median"`
	LimitedVsNone float64        `json:"limited_vs_none"`
}

func newBenchAdmissionCmd(stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	var rounds int
	var bounded bool
	cmd := &cobra.Command{
		Use:   "admission",
		Short: "POST /v1/jobs with an operation rate_limit configured but not reached, against none, in turn on one server: the throughput ratio",
		Args:  cobra.NoArgs,
	}
	cmd.RunE = o.runWith(stdout, stderr, func() string { return admissionOps }, func(ctx context.Context, url string, facts map[string]any) (any, error) {
		load := func(op string) bench.Load {
			return bench.Load{Name: op, URL: url + "/v1/jobs", Body: []byte(`{"operation":"` + op + `","input":{"type":"monthly"}}`),
				Header: http.Header{"Content-Type": {"application/json"}}, Concurrency: o.concurrency, Duration: o.duration, WantStatus: 202}
		}
		var f admissionFigures
		per := map[string][]bench.Result{}
		for round := range max(rounds, 1) {
			ops := []string{"bench", "bench-limited"}
			if bounded {
				ops = append(ops, "bench-bounded")
			}
			if round%2 == 1 { // neither goes first every time (warm-up, drift)
				slices.Reverse(ops)
			}
			for _, op := range ops {
				r := bench.Run(ctx, load(op))
				f.Runs = append(f.Runs, r)
				per[op] = append(per[op], r)
			}
		}
		f.Unlimited, f.Limited = medianResult(per["bench"]), medianResult(per["bench-limited"])
		if bounded {
			f.Runs = append(f.Runs, medianResult(per["bench-bounded"]))
		}
		if f.Unlimited.PerSecond > 0 {
			f.LimitedVsNone = f.Limited.PerSecond / f.Unlimited.PerSecond
		}
		facts["limited_vs_none"] = fmt.Sprintf("%.3f", f.LimitedVsNone)
		return append(f.Runs, f.Unlimited, f.Limited), nil
	})
	o.flags(cmd)
	cmd.Flags().IntVar(&rounds, "rounds", 3, "runs of each, in turn; the figures are the medians")
	cmd.Flags().BoolVar(&bounded, "max-queued", false, "also an operation with max_queued: 1000000 (each submit counts the queue, which grows over the run)")
	return cmd
}

// medianResult is the run of median throughput, named as the median.
func medianResult(rs []bench.Result) bench.Result {
	if len(rs) == 0 {
		return bench.Result{}
	}
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b bench.Result) int { return int(a.PerSecond - b.PerSecond) })
	m := s[len(s)/2]
	m.Name += ": median"
	return m
}
