package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/errandhq/errand/bench"
	"github.com/spf13/cobra"
)

// uiFigures are errand bench ui's results.
type uiFigures struct {
	Jobs       int64                `json:"jobs"`
	Operations int                  `json:"operations"`
	FillSecs   float64              `json:"fill_seconds"`
	Pages      []bench.PageResult   `json:"pages"`
	Watchers   bench.WatchersResult `json:"watchers"`
}

func newBenchUICmd(stdout io.Writer) *cobra.Command {
	var jobs int64
	var ops, watchers, samples int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "The dashboard: the jobs page over a store of 1,000,000 jobs, the overview with 200 operations, and what 100 open dashboards watching live cost (errand as its own process, SQLite)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "errand-bench-ui-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			var b strings.Builder
			b.WriteString("listen: \"127.0.0.1:0\"\nlog: { level: warn }\noperations:\n  bench: {}\n")
			for i := 1; i < ops; i++ {
				fmt.Fprintf(&b, "  op-%03d: { description: \"operation %d\" }\n", i, i)
			}
			fmt.Fprintf(&b, "store: \"sqlite://%s/e.db\"\n", dir)
			p, err := bench.StartProcess(self, dir, b.String())
			if err != nil {
				return err
			}
			defer p.Stop()
			f := uiFigures{Jobs: jobs, Operations: ops}
			start := time.Now()
			for i := 1; i < ops; i++ { // every other operation has a few jobs
				if err := bench.Fill(cmd.Context(), p.URL, fmt.Sprintf("op-%03d", i), 1000); err != nil {
					return err
				}
			}
			// The overview's first view before the big fill (200 operations, 1,000
			// queued jobs each): the queue is counted during the request.
			small, err := bench.UIPagesWith(cmd.Context(), p.URL, map[string]string{
				fmt.Sprintf("overview, first view: %d queued jobs counted", (ops-1)*1000): "/ui/"}, 1, 0)
			if err != nil {
				return err
			}
			if err := bench.Fill(cmd.Context(), p.URL, "bench", jobs); err != nil {
				return err
			}
			f.FillSecs = time.Since(start).Seconds()
			pages := map[string]string{
				"jobs, first page":                  "/ui/jobs",
				"jobs of one operation, first page": "/ui/jobs?operation=bench&status=queued",
				"jobs of a small operation":         "/ui/jobs?operation=op-007",
				"overview":                          "/ui/",
				"operations":                        "/ui/operations",
			}
			if f.Pages, err = bench.UIPages(cmd.Context(), p.URL, pages, samples); err != nil {
				return err
			}
			f.Pages = append(f.Pages, small...)
			sort.Slice(f.Pages, func(i, j int) bool { return f.Pages[i].Name < f.Pages[j].Name })
			p.Stop()
			// The watchers on a server of their own: after the fill, the first
			// one's RSS holds freed pages the new connections would reuse.
			wdir := filepath.Join(dir, "watch")
			if err := os.Mkdir(wdir, 0o700); err != nil {
				return err
			}
			q, err := bench.StartProcess(self, wdir, "listen: \"127.0.0.1:0\"\nlog: { level: warn }\noperations:\n  op-001: {}\n"+
				fmt.Sprintf("store: \"sqlite://%s/e.db\"\n", wdir))
			if err != nil {
				return err
			}
			defer q.Stop()
			if f.Watchers, err = bench.UIWatchers(cmd.Context(), q, "op-001", watchers); err != nil {
				return err
			}
			if asJSON {
				return report(stdout, true, map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version()}, f)
			}
			fmt.Fprintf(stdout, "machine: %d CPUs, %s; errand as its own process on SQLite; %d jobs (%d of one operation), %d operations, filled in %.0f s\n",
				runtime.NumCPU(), runtime.Version(), jobs+int64(ops-1)*1000, jobs, ops, f.FillSecs)
			fmt.Fprintln(stdout, "page\tsamples\tbytes\tp50 ms\tp99 ms\tmax ms")
			for _, r := range f.Pages {
				fmt.Fprintf(stdout, "%s (%s)\t%d\t%d\t%.1f\t%.1f\t%.1f\n", r.Name, r.Path, r.Samples, r.Bytes, r.P50ms, r.P99ms, r.Maxms)
			}
			w := f.Watchers
			fmt.Fprintf(stdout, "%d open dashboards watching live (a fresh server): RSS %+.2f MB (%d bytes each), Go heap + stacks %+.2f MB, %+d goroutines; a new job reached %d of them in %d ms\n",
				w.Watchers, float64(w.RSSDelta)/(1<<20), w.PerWatcher, float64(w.GoDelta)/(1<<20), w.Goroutines, w.GotUpdate, w.UpdateMaxms)
			return nil
		},
	}
	cmd.Flags().Int64Var(&jobs, "jobs", 1_000_000, "jobs of one operation to fill the store with")
	cmd.Flags().IntVar(&ops, "operations", 200, "declared operations (each but the first gets 1,000 jobs)")
	cmd.Flags().IntVar(&watchers, "watchers", 100, "open dashboards (live job lists) whose memory is measured")
	cmd.Flags().IntVar(&samples, "samples", 50, "requests timed per page")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}
