package audit

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand"
)

// failures counts failed authentications per source, action and reason over
// one window at a time (Log.Failure).
type failures struct {
	max int // sources counted one by one per window

	mu       sync.Mutex
	since    time.Time
	counts   map[string]*failCount
	overflow int // failures past max sources
}

// failCount is the first failure of a source, action and reason in the window
// (already written) and how many more came.
type failCount struct {
	first errand.AuditEntry
	more  int
}

func newFailures(max int, now time.Time) *failures {
	return &failures{max: max, since: now.UTC(), counts: map[string]*failCount{}}
}

// add counts e and reports whether it is the first of its kind in the window
// (and so to be written now).
func (f *failures) add(e *errand.AuditEntry, route string) (first bool) {
	key := e.Remote + "\x00" + e.Action + "\x00" + errand.Truncate(route, 200) + "\x00" + reasonClass(e.Detail)
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.counts[key]; c != nil {
		c.more++
		return false
	}
	if len(f.counts) >= f.max {
		f.overflow++
		return false
	}
	f.counts[key] = &failCount{first: *e}
	return true
}

// take ends the window at now: one entry for each source, action and reason
// that failed more than once, with the count, and one for the failures of
// sources past the cap.
func (f *failures) take(now time.Time) []*errand.AuditEntry {
	f.mu.Lock()
	counts, overflow, since := f.counts, f.overflow, f.since
	f.counts, f.overflow, f.since = map[string]*failCount{}, 0, now
	f.mu.Unlock()
	var out []*errand.AuditEntry
	for _, c := range counts {
		if c.more == 0 {
			continue
		}
		e := c.first
		e.Time, e.RequestID = now, ""
		e.Detail = fmt.Sprintf("%d more failed from %s since %s: %s", c.more, e.Remote, since.Format(time.RFC3339), e.Detail)
		out = append(out, &e)
	}
	if overflow > 0 {
		out = append(out, &errand.AuditEntry{Time: now, Action: "authenticate", Outcome: errand.AuditFailed,
			Status: 401, Detail: fmt.Sprintf("%d failed authentications since %s from more sources than the %d counted one by one",
				overflow, since.Format(time.RFC3339), f.max)})
	}
	return out
}

// reasonClass is a failure's reason without what the caller chose: quoted
// parts (an issuer, a role name) are dropped, so that varying them does not
// make every failure a reason of its own.
func reasonClass(detail string) string {
	var b strings.Builder
	quoted, escaped := false, false
	for i := 0; i < len(detail) && b.Len() < 100; i++ {
		c := detail[i]
		switch {
		case quoted && escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			if !quoted {
				b.WriteString(`"…"`)
			}
			quoted = !quoted
		case !quoted:
			b.WriteByte(c)
		}
	}
	return b.String()
}
