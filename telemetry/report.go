package telemetry

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// UsageQuery asks for a tenant's usage (GET /v1/usage).
type UsageQuery struct {
	// Tenant is whose usage: "" for the caller's own; another tenant's takes
	// usage:read@*.
	Tenant string
	// Operation, when set, reads only that operation's.
	Operation string
	// Step is minute or hour. Defaults to minute.
	Step string
	// From and To bound the buckets (starting at or after From, before To).
	// To defaults to now; From to an hour (minute steps) or a day (hour
	// steps) before To.
	From, To time.Time
}

// Limits on what one report reads.
const (
	// MaxUsageBuckets caps the buckets a range spans.
	MaxUsageBuckets = 10000
	// maxUsageRows caps the rows read (buckets × operations × nodes).
	maxUsageRows = 500000
)

// Report is a tenant's usage over a range, per operation and bucket, summed
// over every node: the rows in the store, with this node's buckets still
// open read from memory (so what this node counted shows at once; another
// node's shows once it has flushed, within its FlushInterval).
func (u *Usage) Report(ctx context.Context, p errand.Principal, q UsageQuery) (*errand.UsageReport, error) {
	if err := u.allowed(p, &q); err != nil {
		return nil, err
	}
	if err := u.normalize(&q); err != nil {
		return nil, err
	}
	step := errand.UsageStepDuration(q.Step)
	rows, err := u.store.ListUsage(ctx, storage.ListUsageParams{Tenant: q.Tenant, Operation: q.Operation, Step: step,
		From: q.From, To: q.To, Limit: maxUsageRows + 1})
	if err != nil {
		return nil, err
	}
	if len(rows) > maxUsageRows {
		return nil, errand.Errorf(errand.EINVALID, "the range holds too much usage to read at once: narrow it, or use step=hour")
	}
	rows = u.withOpen(rows, q, step)
	return summarize(q, rows)
}

// allowed checks that p may read q's tenant's usage, and names the tenant.
func (u *Usage) allowed(p errand.Principal, q *UsageQuery) error {
	if q.Tenant == "" || q.Tenant == p.Tenant {
		q.Tenant = p.Tenant
		if !p.Can(errand.PermUsageRead, "") && !p.CanEveryTenant(errand.PermUsageRead, "") {
			return errand.Deny(errand.PermUsageRead, "usage of tenant "+p.Tenant)
		}
		return nil
	}
	if !p.CanEveryTenant(errand.PermUsageRead, "") {
		return errand.Deny(errand.PermUsageRead+errand.EveryTenant, "usage of tenant "+errand.Truncate(q.Tenant, 100))
	}
	return nil
}

// normalize fills q's defaults and checks its range.
func (u *Usage) normalize(q *UsageQuery) error {
	if q.Step == "" {
		q.Step = errand.UsageMinute
	}
	step := errand.UsageStepDuration(q.Step)
	if step == 0 {
		return errand.Errorf(errand.EINVALID, "step must be minute or hour, not %q", errand.Truncate(q.Step, 20))
	}
	if q.To.IsZero() {
		q.To = u.cfg.Now()
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-60 * step)
		if step == time.Hour {
			q.From = q.To.Add(-24 * step)
		}
	}
	q.From, q.To = q.From.UTC().Truncate(step), q.To.UTC()
	if !q.From.Before(q.To) {
		return errand.Errorf(errand.EINVALID, "from must be before to")
	}
	if q.To.Sub(q.From) > MaxUsageBuckets*step {
		return errand.Errorf(errand.EINVALID, "the range spans more than %d %ss: narrow it, or use a longer step", MaxUsageBuckets, q.Step)
	}
	return nil
}

// withOpen replaces this node's stored rows of the buckets it still has open
// by their totals in memory (which the stored rows are an earlier copy of),
// and adds those not yet stored.
func (u *Usage) withOpen(rows []storage.UsageRow, q UsageQuery, step time.Duration) []storage.UsageRow {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := rows[:0]
	for _, r := range rows {
		k := usageKey{r.Tenant, r.Operation, r.Step, r.Bucket.UTC()}
		if _, open := u.open[k]; open && r.Node == u.node {
			continue
		}
		out = append(out, r)
	}
	for k, b := range u.open {
		if k.tenant != q.Tenant || k.step != step || (q.Operation != "" && k.op != q.Operation) ||
			k.bucket.Before(q.From) || !k.bucket.Before(q.To) {
			continue
		}
		out = append(out, u.row(k, b))
	}
	return out
}

// total is a bucket's (or a range's) counters and sketches being summed.
type total struct {
	c         errand.UsageCounts
	run, wait sketch
}

func (t *total) add(r *storage.UsageRow) error {
	t.c.Submitted += r.Submitted
	t.c.Succeeded += r.Succeeded
	t.c.Failed += r.Failed
	t.c.Canceled += r.Canceled
	t.c.EventsPublished += r.Events
	t.c.WebhookDeliveries += r.Deliveries
	t.c.ArtifactBytes += r.ArtifactBytes
	for _, h := range []struct {
		dst *sketch
		b   []byte
	}{{&t.run, r.RunTime}, {&t.wait, r.QueueWait}} {
		s, err := decodeSketch(h.b)
		if err != nil {
			return err
		}
		h.dst.merge(s)
	}
	return nil
}

func (t *total) counts() errand.UsageCounts {
	c := t.c
	c.RunTime, c.QueueWait = percentiles(&t.run), percentiles(&t.wait)
	return c
}

func percentiles(s *sketch) errand.Percentiles {
	p := errand.Percentiles{Count: int64(s.count())}
	for _, q := range []struct {
		q   float64
		dst **float64
	}{{0.5, &p.P50}, {0.95, &p.P95}, {0.99, &p.P99}} {
		if d, ok := s.quantile(q.q); ok {
			v := d.Seconds()
			*q.dst = &v
		}
	}
	return p
}

// summarize sums rows (any order, several nodes') into the report.
func summarize(q UsageQuery, rows []storage.UsageRow) (*errand.UsageReport, error) {
	type series struct {
		all     total
		buckets map[time.Time]*total
	}
	byOp := map[string]*series{}
	for i := range rows {
		r := &rows[i]
		s := byOp[r.Operation]
		if s == nil {
			s = &series{buckets: map[time.Time]*total{}}
			byOp[r.Operation] = s
		}
		b := s.buckets[r.Bucket.UTC()]
		if b == nil {
			b = &total{}
			s.buckets[r.Bucket.UTC()] = b
		}
		if err := b.add(r); err != nil {
			return nil, err
		}
		if err := s.all.add(r); err != nil {
			return nil, err
		}
	}
	rep := &errand.UsageReport{Tenant: q.Tenant, Step: q.Step, From: q.From, To: q.To, Operations: []errand.UsageSeries{}}
	for _, op := range slices.Sorted(maps.Keys(byOp)) {
		s := byOp[op]
		out := errand.UsageSeries{Operation: op, Total: s.all.counts(), Points: []errand.UsagePoint{}}
		for _, t := range slices.SortedFunc(maps.Keys(s.buckets), time.Time.Compare) {
			out.Points = append(out.Points, errand.UsagePoint{Time: t, UsageCounts: s.buckets[t].counts()})
		}
		rep.Operations = append(rep.Operations, out)
	}
	return rep, nil
}
