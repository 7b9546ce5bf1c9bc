package audit_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/audit"
	"github.com/errandhq/errand/internal/teststore"
)

var admin = errand.Principal{Subject: "root", Tenant: "acme", Permissions: []string{errand.PermAdmin}}

func TestLog(t *testing.T) {
	s := teststore.Open(t)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	l, err := audit.New(s, &audit.Config{Retention: 24 * time.Hour, Queue: 4, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Entries queued before Start wait in the queue; past it they are counted.
	for i := range 6 {
		l.Record(errand.AuditEntry{Tenant: "acme", Subject: "ann", Action: "jobs:submit", Resource: "op", Outcome: errand.AuditDenied, Status: 403, Detail: string(rune('a' + i))})
	}
	l.Record(errand.AuditEntry{Time: now.Add(-48 * time.Hour), Tenant: "acme", Action: "old", Outcome: errand.AuditOK})
	l.Start(ctx)
	if err := l.Write(ctx, errand.AuditEntry{Tenant: "acme", Subject: "root", Action: "keys:create", Resource: "key_1", Outcome: errand.AuditOK}); err != nil {
		t.Fatal(err)
	}
	page, err := l.List(ctx, &errand.Principal{Tenant: "acme", Permissions: []string{"audit:read@*"}}, audit.Query{After: "0"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range page.Entries {
		actions = append(actions, e.Action)
	}
	// Four denials fit the queue; two and the old entry were dropped, and a
	// batch says so (which batch depends on when the writer started).
	want := []string{"audit:dropped", "jobs:submit", "jobs:submit", "jobs:submit", "jobs:submit", "keys:create"}
	if slices.Sort(actions); !slices.Equal(actions, want) {
		t.Fatalf("entries %v, want %v", actions, want)
	}
	for _, e := range page.Entries {
		if e.Action == "audit:dropped" && e.Detail != "3 entries dropped: the audit queue was full" {
			t.Errorf("drop entry %q", e.Detail)
		}
	}
	if last := page.Entries[len(page.Entries)-1]; page.Next != strconv.FormatInt(last.Seq, 10) {
		t.Errorf("follow cursor %q, want the last seq %d", page.Next, last.Seq)
	}
	if _, err := l.List(ctx, &errand.Principal{Tenant: "acme"}, audit.Query{}); errand.ErrorCode(err) != errand.EFORBIDDEN {
		t.Errorf("List without audit:read: %v, want forbidden", err)
	}
	if _, err := l.List(ctx, &admin, audit.Query{After: "x"}); errand.ErrorCode(err) != errand.ECURSOR {
		t.Errorf("List with a bad cursor: %v, want invalid_cursor", err)
	}
	other := errand.Principal{Tenant: "globex", Permissions: []string{errand.PermAuditRead}}
	if p, _ := l.List(ctx, &other, audit.Query{}); len(p.Entries) != 0 {
		t.Errorf("another tenant sees %d entries, want none", len(p.Entries))
	}
	operator := errand.Principal{Tenant: "globex", Permissions: []string{"audit:read@*"}}
	if p, _ := l.List(ctx, &operator, audit.Query{}); len(p.Entries) != 6 {
		t.Errorf("an operator sees %d entries, want every tenant's and the tenantless drop count (6)", len(p.Entries))
	}
	if err := l.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestFailures: failed authentications are counted per source, route and
// reason: the first of each is written at once, the rest as one entry with
// their count when the window ends; sources past the cap are counted together.
func TestFailures(t *testing.T) {
	s := teststore.Open(t)
	l, err := audit.New(s, &audit.Config{FailureWindow: 200 * time.Millisecond, MaxFailureSources: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l.Start(ctx)
	fail := func(remote, route, detail string, n int) {
		for range n {
			l.Failure(errand.AuditEntry{Action: "authenticate", Resource: "GET " + strings.Repeat("/x", 1000),
				Outcome: errand.AuditFailed, Status: 401, Detail: detail, Remote: remote}, route)
		}
	}
	fail("10.0.0.1", "GET /v1/me", "the token has expired", 500)
	fail("10.0.0.1", "GET /v1/me", `the token's issuer "https://a" is not trusted`, 300)
	fail("10.0.0.1", "GET /v1/me", `the token's issuer "https://b" is not trusted`, 300) // same reason
	fail("10.0.0.1", "GET /v1/jobs/{id}", "the token has expired", 1)
	fail("10.0.0.2", "GET /v1/me", "the token has expired", 7) // a fourth key: past the cap
	operator := &errand.Principal{Tenant: "ops", Permissions: []string{"audit:read@*"}}
	var es []*errand.AuditEntry
	deadline := time.Now().Add(5 * time.Second)
	for len(es) < 6 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		page, err := l.List(ctx, operator, audit.Query{After: "0"})
		if err != nil {
			t.Fatal(err)
		}
		es = page.Entries
	}
	var details []string
	for _, e := range es {
		if len(e.Resource) > 140 {
			t.Errorf("resource of %d bytes, want at most 128 and a mark", len(e.Resource))
		}
		details = append(details, strings.SplitN(e.Detail, " since ", 2)[0])
	}
	slices.Sort(details)
	want := []string{"499 more failed from 10.0.0.1", "599 more failed from 10.0.0.1",
		"7 failed authentications", "the token has expired", "the token has expired", `the token's issuer "https://a" is not trusted`}
	if !slices.Equal(details, want) {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(details, "\n"), strings.Join(want, "\n"))
	}
	if err := l.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
