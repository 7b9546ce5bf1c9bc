package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/client"
	"github.com/errandhq/errand/config"
	"github.com/spf13/cobra"
)

func newUsageCmd(f *clientFlags, stdout io.Writer) *cobra.Command {
	var o client.UsageOptions
	var from, to string
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "What a tenant used, per operation: a table with a sparkline of each row's jobs (or events) per bucket",
		Example: `  errand usage                        # the last hour, by the minute
  errand usage --step hour --from 7d   # the last week, by the hour
  errand usage --operation generate-report --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			now := time.Now()
			if o.From, err = whenFlag("--from", from, now); err != nil {
				return err
			}
			if o.To, err = whenFlag("--to", to, now); err != nil {
				return err
			}
			rep, err := c.Usage(cmd.Context(), o)
			if err != nil {
				return err
			}
			return f.print(stdout, rep, usageTable(rep))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Operation, "operation", "", "only this operation")
	fl.StringVar(&o.Step, "step", errand.UsageMinute, "bucket width: minute or hour")
	fl.StringVar(&from, "from", "", "the first bucket: an RFC 3339 time, or how long ago (90m, 7d); default an hour (a day by the hour) before --to")
	fl.StringVar(&to, "to", "", "the end of the range: an RFC 3339 time, or how long ago; default now")
	fl.StringVar(&o.Tenant, "tenant", "", "another tenant's usage (needs usage:read@*)")
	return cmd
}

// whenFlag reads a time flag: RFC 3339, or a duration before now ("" is zero).
func whenFlag(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := config.ParseDuration(strings.TrimPrefix(v, "-"))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is neither an RFC 3339 time nor a duration (like 90m or 7d)", name, v)
	}
	return now.Add(-d), nil
}

// sparkWidth is the most characters a sparkline takes; longer ranges sum
// neighbouring buckets into one character.
const sparkWidth = 48

// usageTable prints one row per operation ("(none)" for what belongs to none)
// with its totals and a sparkline over the range.
func usageTable(rep *errand.UsageReport) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		step := errand.UsageStepDuration(rep.Step)
		fmt.Fprintf(tw, "tenant %s, %s to %s, by the %s\n\n", rep.Tenant, rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339), rep.Step)
		fmt.Fprintln(tw, "OPERATION\tSUBMITTED\tSUCCEEDED\tFAILED\tCANCELED\tRUN p50/p95/p99\tWAIT p95\tEVENTS\tDELIVERIES\tARTIFACTS\tPER "+strings.ToUpper(rep.Step))
		if len(rep.Operations) == 0 {
			fmt.Fprintln(tw, "(nothing used in this range)")
		}
		for _, s := range rep.Operations {
			t := s.Total
			name := s.Operation
			if name == "" {
				name = "(none)"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", name, t.Submitted, t.Succeeded, t.Failed, t.Canceled,
				triple(t.RunTime), seconds(t.QueueWait.P95), t.EventsPublished, t.WebhookDeliveries, bytesText(t.ArtifactBytes),
				sparkline(rep.From, rep.To, step, s))
		}
	}
}

// sparkline draws a series' activity per bucket (jobs submitted; for the
// operation-less row, events and deliveries), scaled to its busiest bucket.
func sparkline(from, to time.Time, step time.Duration, s errand.UsageSeries) string {
	if step <= 0 || !from.Before(to) {
		return ""
	}
	n := int((to.Sub(from) + step - 1) / step)
	per := (n + sparkWidth - 1) / sparkWidth // buckets per character
	cells := make([]int64, (n+per-1)/per)
	for _, p := range s.Points {
		i := int(p.Time.Sub(from) / step)
		if i < 0 || i >= n {
			continue
		}
		v := p.Submitted
		if s.Operation == "" {
			v = p.EventsPublished + p.WebhookDeliveries
		}
		cells[i/per] += v
	}
	var peak int64
	for _, v := range cells {
		peak = max(peak, v)
	}
	bars := []rune("▁▂▃▄▅▆▇█")
	var b strings.Builder
	for _, v := range cells {
		switch {
		case v == 0:
			b.WriteRune(' ')
		default:
			b.WriteRune(bars[min(int(v*int64(len(bars)-1)/peak), len(bars)-1)])
		}
	}
	return "|" + b.String() + "|"
}

func triple(p errand.Percentiles) string {
	if p.Count == 0 {
		return "-"
	}
	return seconds(p.P50) + "/" + seconds(p.P95) + "/" + seconds(p.P99)
}

// seconds is a duration in seconds, rounded for people ("-" for none).
func seconds(s *float64) string {
	if s == nil {
		return "-"
	}
	d := time.Duration(*s * float64(time.Second))
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
