package ui

import (
	cryptotls "crypto/tls"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
)

// TestSessions: a session lasts its TTL (or its token's expiry, if sooner),
// ends on sign-out, and accepts only its own CSRF token.
func TestSessions(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ss := newSessions(time.Hour)
	ss.now = func() time.Time { return now }
	s := ss.create("ek_x", nil)
	soon := now.Add(10 * time.Minute)
	short := ss.create("jwt", &soon)
	if ss.get(s.id) != s || ss.get(short.id) != short {
		t.Fatal("a new session is not found")
	}
	if !s.validCSRF(s.csrf) || s.validCSRF(short.csrf) || s.validCSRF("") {
		t.Error("a session accepts another's CSRF token, or not its own")
	}
	now = now.Add(11 * time.Minute)
	if ss.get(short.id) != nil {
		t.Error("a session outlived its token")
	}
	if ss.get(s.id) != s {
		t.Error("a session ended before its TTL")
	}
	ss.end(s.id)
	if ss.get(s.id) != nil {
		t.Error("a signed-out session is still found")
	}
	s2 := ss.create("ek_y", nil)
	now = now.Add(time.Hour)
	if ss.get(s2.id) != nil {
		t.Error("a session outlived its TTL")
	}
}

// TestBulkSelection: a confirmation token is taken once.
func TestBulkSelection(t *testing.T) {
	s := &session{}
	tok := s.hold(&selection{action: "retry", ids: []string{"job_1"}, expires: time.Now().Add(time.Minute)})
	if got := s.take(tok); got == nil || got.ids[0] != "job_1" {
		t.Fatalf("take = %+v", got)
	}
	if s.take(tok) != nil {
		t.Error("a confirmation was taken twice")
	}
	old := s.hold(&selection{expires: time.Now().Add(-time.Second)})
	if s.take(old) != nil {
		t.Error("an expired confirmation was taken")
	}
}

// TestFilter: the jobs filter's parts the store does not select.
func TestFilter(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	j := &errand.Job{ID: "job_A", Operation: "report", Status: errand.StatusFailed, CreatedAt: t0,
		IdempotencyKey: "order-7", Metadata: map[string]string{"customer": "acme"}}
	for _, c := range []struct {
		query    string
		ok, more bool
	}{
		{"", true, true},
		{"status=failed&operation=report", true, true},
		{"status=queued", false, true},
		{"since=2026-12-01T12:01", false, false}, // older than since: none after it can match
		{"until=2026-12-01T12:00", false, true},
		{"until=2026-12-01T12:01&since=2026-12-01", true, true},
		{"q=order-7", true, true},
		{"q=customer%3Dacme", true, true},
		{"q=acme", true, true},
		{"q=customer%3Dglobex", false, true},
		{"q=job_A", true, true},
	} {
		q, _ := url.ParseQuery(c.query)
		f, err := parseFilter(q)
		if err != nil {
			t.Fatalf("parseFilter(%s): %v", c.query, err)
		}
		if ok, more := f.matches(j); ok != c.ok || more != c.more {
			t.Errorf("%s: matches = %v, %v; want %v, %v", c.query, ok, more, c.ok, c.more)
		}
	}
	for _, bad := range []string{"status=done", "since=yesterday"} {
		q, _ := url.ParseQuery(bad)
		if _, err := parseFilter(q); errand.ErrorCode(err) != errand.EINVALID {
			t.Errorf("parseFilter(%s) = %v, want invalid", bad, err)
		}
	}
}

// TestSafeNext: sign-in goes back only to a dashboard page.
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"/ui/jobs?x=1": "/ui/jobs?x=1", "https://evil.example/ui/": "/ui/",
		"//evil.example/ui/": "/ui/", "/v1/keys": "/ui/", "/ui/\\evil": "/ui/", "": "/ui/"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestChart: one bar per minute with a value, scaled to the highest.
func TestChart(t *testing.T) {
	from := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	pts := []errand.UsagePoint{{Time: from, UsageCounts: errand.UsageCounts{Submitted: 2}},
		{Time: from.Add(59 * time.Minute), UsageCounts: errand.UsageCounts{Submitted: 4}},
		{Time: from.Add(2 * time.Hour), UsageCounts: errand.UsageCounts{Submitted: 9}}}
	c := chartOf(pts, from, 60, func(u *errand.UsageCounts) int64 { return u.Submitted })
	if c.Max != 4 || c.Total != 6 || strings.Count(c.D, "M") != 2 || !strings.Contains(c.D, "v-30.0") || !strings.Contains(c.D, "v-15.0") {
		t.Errorf("chart = %+v", c)
	}
	if c := chartOf(nil, from, 60, func(u *errand.UsageCounts) int64 { return u.Failed }); c.D != "" || c.Max != 0 {
		t.Errorf("empty chart = %+v", c)
	}
}

// TestPages: every page's template parses with the layout.
func TestPages(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"overview", "jobs", "job", "bulk", "operations", "channels", "channel", "webhooks", "endpoint", "access", "sign-in", "error"} {
		if pages[name] == nil {
			t.Errorf("no page %s", name)
		}
	}
}

// TestPrettyJSON: shown as the input holds it (the template escapes).
func TestPrettyJSON(t *testing.T) {
	if got := prettyJSON([]byte(`{"x":"<script>&"}`)); got != "{\n  \"x\": \"<script>&\"\n}" {
		t.Errorf("prettyJSON = %q", got)
	}
}

// TestCookie: HttpOnly and SameSite=Strict always; over TLS Secure, with the
// __Host- prefix, for path / and no domain.
func TestCookie(t *testing.T) {
	s := newSessions(time.Hour).create("ek_x", nil)
	for _, tls := range []bool{false, true} {
		r := httptest.NewRequest("GET", "/ui/", nil)
		if tls {
			r.TLS = &cryptotls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		setCookie(w, r, s)
		c := w.Header().Get("Set-Cookie")
		want := []string{"HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="}
		name := "errand_session="
		if tls {
			want, name = append(want, "Secure"), "__Host-errand_session="
		}
		if !strings.HasPrefix(c, name+s.id) || strings.Contains(c, "Domain=") {
			t.Errorf("TLS %v: cookie %q, want %s…", tls, c, name)
		}
		for _, part := range want {
			if !strings.Contains(c, part) {
				t.Errorf("TLS %v: cookie %q lacks %s", tls, c, part)
			}
		}
		if !tls && strings.Contains(c, "Secure") {
			t.Errorf("a cookie over plain HTTP is Secure: %q", c)
		}
	}
}

// TestAttempts: each job.started opens an attempt, the next retrying or
// terminal event closes it with its outcome and error.
func TestAttempts(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ev := func(typ, data string, s int) *errand.Event {
		return &errand.Event{Type: typ, Data: []byte(data), Time: t0.Add(time.Duration(s) * time.Second)}
	}
	got := attemptsOf([]*errand.Event{
		ev(errand.EventJobCreated, `{}`, 0),
		ev(errand.EventJobStarted, `{"attempt":1,"worker":"w1"}`, 1),
		ev(errand.EventJobProgress, `{"percent":50}`, 2),
		ev(errand.EventJobRetrying, `{"attempt":1,"reason":"failed","error":{"code":"boom","detail":"it broke"}}`, 3),
		ev(errand.EventJobStarted, `{"attempt":2,"worker":"w2"}`, 4),
		ev(errand.EventJobFailed, `{"status":"failed","error":{"code":"boom","detail":"again"}}`, 5),
		ev(errand.EventJobStarted, `{"attempt":3,"worker":"w1"}`, 6),
	})
	if len(got) != 3 || got[0].Outcome != "retrying (failed)" || got[0].Error != "boom: it broke" || got[0].Worker != "w1" ||
		!got[0].Ended.Equal(t0.Add(3*time.Second)) || got[1].Outcome != "failed" || got[1].Error != "boom: again" ||
		got[2].Outcome != "" || !got[2].Ended.IsZero() {
		t.Errorf("attempts = %+v", got)
	}
}
