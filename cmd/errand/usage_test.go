package main

import (
	"bytes"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/errandhq/errand"
)

// TestUsageTable keeps what errand usage prints for a known report in a
// golden file: a row per operation (and one for what belongs to none), its
// totals, percentiles, and a sparkline of its buckets over the range.
func TestUsageTable(t *testing.T) {
	from := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f := func(v float64) *float64 { return &v }
	at := func(m int) time.Time { return from.Add(time.Duration(m) * time.Minute) }
	rep := &errand.UsageReport{Tenant: "acme", Step: "minute", From: from, To: from.Add(time.Hour), Operations: []errand.UsageSeries{
		{Operation: "", Total: errand.UsageCounts{EventsPublished: 40, WebhookDeliveries: 12},
			Points: []errand.UsagePoint{{Time: at(3), UsageCounts: errand.UsageCounts{EventsPublished: 40, WebhookDeliveries: 12}}}},
		{Operation: "generate-report", Total: errand.UsageCounts{Submitted: 120, Succeeded: 110, Failed: 8, Canceled: 2, ArtifactBytes: 48213 * 110,
			RunTime:   errand.Percentiles{Count: 118, P50: f(1.25), P95: f(4.5), P99: f(9.87)},
			QueueWait: errand.Percentiles{Count: 118, P50: f(0.002), P95: f(0.0123), P99: f(0.09)}},
			Points: []errand.UsagePoint{
				{Time: at(0), UsageCounts: errand.UsageCounts{Submitted: 10}}, {Time: at(1), UsageCounts: errand.UsageCounts{Submitted: 40}},
				{Time: at(2), UsageCounts: errand.UsageCounts{Submitted: 20}}, {Time: at(30), UsageCounts: errand.UsageCounts{Submitted: 45}},
				{Time: at(59), UsageCounts: errand.UsageCounts{Submitted: 5}}, {Time: at(75), UsageCounts: errand.UsageCounts{Submitted: 99}}}},
		{Operation: "idle", Total: errand.UsageCounts{}, Points: []errand.UsagePoint{}},
	}}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	usageTable(rep)(tw)
	tw.Flush()
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	usageTable(&errand.UsageReport{Tenant: "acme", Step: "hour", From: from, To: from.Add(7 * 24 * time.Hour), Operations: []errand.UsageSeries{
		{Operation: "weekly", Total: errand.UsageCounts{Submitted: 3}, Points: []errand.UsagePoint{
			{Time: from, UsageCounts: errand.UsageCounts{Submitted: 1}}, {Time: from.Add(100 * time.Hour), UsageCounts: errand.UsageCounts{Submitted: 2}}}},
	}})(tw)
	tw.Flush()
	golden(t, "usage-table", b.String())
}
