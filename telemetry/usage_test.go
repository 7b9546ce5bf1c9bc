package telemetry

import (
	"context"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/storage"
)

// usageClock is a settable clock for the recorder.
type usageClock struct{ t time.Time }

func (c *usageClock) now() time.Time { return c.t }

func newUsage(t *testing.T, s storage.Store, clock *usageClock) *Usage {
	t.Helper()
	u, err := NewUsage(s, &UsageConfig{Now: clock.now, FlushInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var (
	reader   = errand.Principal{ID: "key_a", Tenant: "a", Permissions: []string{errand.PermUsageRead}}
	admin    = errand.Principal{ID: "key_b", Tenant: "b", Permissions: []string{errand.PermAdmin}}
	operator = errand.Principal{ID: "config:op", Tenant: "ops", Permissions: []string{errand.PermUsageRead + errand.EveryTenant}}
	nobody   = errand.Principal{ID: "key_c", Tenant: "a", Permissions: []string{"jobs:read:own"}}
)

// TestUsageSumsNodes: two nodes record the same tenants' work in the same
// minutes; a report (from either) sums both nodes' rows, per tenant and
// operation, with percentiles over both; a node's unflushed buckets show at
// once in its own reports; a restarted node adds to what it wrote before.
func TestUsageSumsNodes(t *testing.T) {
	teststore.Each(t, func(t *testing.T, s storage.Store) {
		clock := &usageClock{t: t0.Add(10 * time.Second)}
		n1, n2 := newUsage(t, s, clock), newUsage(t, s, clock)
		commit := func(u *Usage, evs ...*errand.Event) { u.Committed(&storage.CommitStats{Calls: 1, Events: evs}) }
		commit(n1, jobLife("job_1", "report", "a", errand.EventJobSucceeded, "")...)
		commit(n1, jobLife("job_2", "report", "a", errand.EventJobFailed, "worker_error")...)
		commit(n2, jobLife("job_3", "report", "a", errand.EventJobSucceeded, "")...)
		commit(n2, jobLife("job_4", "email", "a", errand.EventJobSucceeded, "")...)
		commit(n2, jobLife("job_5", "report", "b", errand.EventJobSucceeded, "")...)
		commit(n1, &errand.Event{Stream: "orders.eu", Tenant: "a", Type: "x", Time: t0})
		n2.Attempted("a", "succeeded", time.Millisecond)
		n2.Attempted("a", "skipped", 0)
		ctx := context.Background()
		if err := n2.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// n1 has not flushed: its own report reads its buckets from memory.
		rep, err := n1.Report(ctx, reader, UsageQuery{From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		checkUsage(t, "n1 before its flush", rep, map[string]errand.UsageCounts{
			"":       {EventsPublished: 1, WebhookDeliveries: 1},
			"email":  {Submitted: 1, Succeeded: 1},
			"report": {Submitted: 3, Succeeded: 2, Failed: 1},
		})
		if err := n1.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// Another node (a third, or n1 restarted) reads the same from the store.
		n3 := newUsage(t, s, clock)
		rep, err = n3.Report(ctx, reader, UsageQuery{From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		checkUsage(t, "a third node", rep, map[string]errand.UsageCounts{
			"":       {EventsPublished: 1, WebhookDeliveries: 1},
			"email":  {Submitted: 1, Succeeded: 1},
			"report": {Submitted: 3, Succeeded: 2, Failed: 1},
		})
		for _, s := range rep.Operations {
			if s.Operation == "report" {
				if rt := s.Total.RunTime; rt.Count != 3 || rt.P50 == nil || *rt.P50 < 1.9 || *rt.P50 > 2.1 {
					t.Errorf("report run time = %+v, want 3 runs of about 2 s", rt)
				}
				if len(s.Points) != 1 || !s.Points[0].Time.Equal(t0) || s.Points[0].Submitted != 3 {
					t.Errorf("report points = %+v, want one minute at %v with 3 submitted", s.Points, t0)
				}
			}
		}
		// The restarted node counts on in new rows: nothing is overwritten.
		commit(n3, jobLife("job_6", "report", "a", errand.EventJobSucceeded, "")...)
		if err := n3.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		rep, _ = newUsage(t, s, clock).Report(ctx, reader, UsageQuery{Step: "hour", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
		checkUsage(t, "hours, after a restart", rep, map[string]errand.UsageCounts{
			"":       {EventsPublished: 1, WebhookDeliveries: 1},
			"email":  {Submitted: 1, Succeeded: 1},
			"report": {Submitted: 4, Succeeded: 3, Failed: 1},
		})
		rep, err = n1.Report(ctx, admin, UsageQuery{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Operation: "report"})
		if err != nil {
			t.Fatal(err)
		}
		checkUsage(t, "tenant b's admin", rep, map[string]errand.UsageCounts{"report": {Submitted: 1, Succeeded: 1}})
	})
}

// checkUsage compares a report's totals (counters only) with want.
func checkUsage(t *testing.T, what string, rep *errand.UsageReport, want map[string]errand.UsageCounts) {
	t.Helper()
	got := map[string]errand.UsageCounts{}
	for _, s := range rep.Operations {
		c := s.Total
		c.RunTime, c.QueueWait = errand.Percentiles{}, errand.Percentiles{}
		got[s.Operation] = c
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d operations %v, want %v", what, len(got), got, want)
	}
	for op, w := range want {
		if got[op] != w {
			t.Errorf("%s: operation %q = %+v, want %+v", what, op, got[op], w)
		}
	}
}

// TestUsagePermissions: a tenant reads its own usage with usage:read (or
// admin); another tenant's takes usage:read@*; admin never reaches across.
func TestUsagePermissions(t *testing.T) {
	s := teststore.Open(t)
	u := newUsage(t, s, &usageClock{t: t0})
	ctx := context.Background()
	tests := []struct {
		p      errand.Principal
		tenant string
		ok     bool
	}{
		{reader, "", true}, {reader, "a", true}, {reader, "b", false},
		{admin, "", true}, {admin, "a", false},
		{operator, "a", true}, {operator, "", true},
		{nobody, "", false},
	}
	for _, tt := range tests {
		rep, err := u.Report(ctx, tt.p, UsageQuery{Tenant: tt.tenant})
		if (err == nil) != tt.ok {
			t.Errorf("%s reading %q's usage: %v, want ok=%v", tt.p.ID, tt.tenant, err, tt.ok)
			continue
		}
		if err != nil && errand.ErrorCode(err) != errand.EFORBIDDEN {
			t.Errorf("%s reading %q's usage: code %s, want forbidden", tt.p.ID, tt.tenant, errand.ErrorCode(err))
		}
		if err == nil && rep.Tenant != cmpOr(tt.tenant, tt.p.Tenant) {
			t.Errorf("%s reading %q's usage read tenant %q", tt.p.ID, tt.tenant, rep.Tenant)
		}
	}
	for _, q := range []UsageQuery{{Step: "second"}, {From: t0, To: t0}, {From: t0.Add(-365 * 24 * time.Hour), To: t0}} {
		if _, err := u.Report(ctx, reader, q); errand.ErrorCode(err) != errand.EINVALID {
			t.Errorf("Report(%+v) = %v, want invalid_request", q, err)
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestUsageClosesBuckets: a bucket written and past its grace leaves memory;
// an event that arrives for it later counts in the current bucket instead
// of rewriting the closed one's row with the late count alone.
func TestUsageClosesBuckets(t *testing.T) {
	s := teststore.Open(t)
	clock := &usageClock{t: t0.Add(5 * time.Second)}
	u := newUsage(t, s, clock)
	ctx := context.Background()
	u.Committed(&storage.CommitStats{Events: jobLife("job_1", "report", "a", errand.EventJobSucceeded, "")})
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	clock.t = t0.Add(2 * time.Minute)
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	u.mu.Lock()
	open := len(u.open)
	u.mu.Unlock()
	if open != 1 { // the hour is still open; the minute has closed
		t.Errorf("%d buckets open after the minute closed, want 1 (the hour)", open)
	}
	late := jobLife("job_2", "report", "a", errand.EventJobSucceeded, "")
	u.Committed(&storage.CommitStats{Events: late})
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := u.Report(ctx, reader, UsageQuery{From: t0, To: t0.Add(5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var first, now int64
	for _, p := range rep.Operations[0].Points {
		switch {
		case p.Time.Equal(t0):
			first = p.Submitted
		case p.Time.Equal(t0.Add(2 * time.Minute)):
			now = p.Submitted
		}
	}
	if first != 1 || now != 1 {
		t.Errorf("submitted in minute 0 = %d, in minute 2 = %d; want 1 and 1 (the late job counted now)", first, now)
	}
}
