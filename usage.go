package errand

import "time"

// The widths of usage buckets (GET /v1/usage?step=).
const (
	UsageMinute = "minute"
	UsageHour   = "hour"
)

// UsageStepDuration is the width of a usage step (minute or hour), or 0 for
// any other word.
func UsageStepDuration(step string) time.Duration {
	switch step {
	case UsageMinute:
		return time.Minute
	case UsageHour:
		return time.Hour
	}
	return 0
}

// UsageReport is what one tenant used over a time range, per operation and
// bucket (GET /v1/usage). It is summed over every errand node.
type UsageReport struct {
	Tenant string `json:"tenant"`
	// Step is the buckets' width: minute or hour.
	Step string `json:"step"`
	// From and To bound the range: buckets starting at or after From and
	// before To.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Operations hold one series per operation that used anything in the
	// range, by name; the one named "" holds what belongs to no operation.
	Operations []UsageSeries `json:"operations"`
}

// UsageSeries is one operation's usage: over the whole range and per bucket.
type UsageSeries struct {
	// Operation is the operation's name, or "" for what belongs to none:
	// channel events published and webhook deliveries.
	Operation string `json:"operation"`
	// Total is the whole range's usage (percentiles over every bucket's jobs).
	Total UsageCounts `json:"total"`
	// Points are the buckets that used anything, oldest first.
	Points []UsagePoint `json:"points"`
}

// UsagePoint is one bucket's usage.
type UsagePoint struct {
	// Time is when the bucket starts.
	Time time.Time `json:"time"`
	UsageCounts
}

// UsageCounts are the counters and percentiles of a bucket (or of a range).
type UsageCounts struct {
	// Submitted, Succeeded, Failed and Canceled count jobs by what happened
	// to them in the bucket.
	Submitted int64 `json:"submitted"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
	Canceled  int64 `json:"canceled"`
	// EventsPublished counts channel events published.
	EventsPublished int64 `json:"events_published"`
	// WebhookDeliveries counts delivery attempts made to the tenant's
	// endpoints and callback URLs.
	WebhookDeliveries int64 `json:"webhook_deliveries"`
	// ArtifactBytes is the size of the artifacts of the jobs that finished.
	ArtifactBytes int64 `json:"artifact_bytes"`
	// RunTime is how long attempts ran (started → ended), in seconds.
	RunTime Percentiles `json:"run_seconds"`
	// QueueWait is how long jobs waited to start once due (run_at → started),
	// in seconds.
	QueueWait Percentiles `json:"queue_wait_seconds"`
}

// Percentiles summarize durations in seconds: how many, and the 50th, 95th
// and 99th percentiles (nil when there are none). They come from a
// log-scale histogram: each is within 4.5 % of a duration that was observed
// at that rank.
type Percentiles struct {
	Count int64    `json:"count"`
	P50   *float64 `json:"p50"`
	P95   *float64 `json:"p95"`
	P99   *float64 `json:"p99"`
}
