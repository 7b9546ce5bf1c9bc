package queue

import (
	"testing"
	"time"

	"github.com/errandhq/errand"
)

// TestFairSharePlan: leases go by weight between keys with backlogs, a key
// that comes back goes next (no credit, no wait behind a backlog), and a
// lone key gets every lease.
func TestFairSharePlan(t *testing.T) {
	f := &fairShare{pass: map[string]float64{}, weights: map[string]int{"a": 3}}
	got := map[string]int{}
	for range 400 {
		for _, a := range f.plan([]string{"a", "b"}, 1, nil, true) {
			got[a.key] += a.n
			f.charge(map[string]int{a.key: a.n})
		}
	}
	if got["a"] != 300 || got["b"] != 100 {
		t.Errorf("400 leases with weights a:3 b:1 went %v, want a 300, b 100", got)
	}
	// c comes with one job after a's and b's long run: it goes within the next round.
	plan := f.plan([]string{"a", "b", "c"}, 3, nil, true)
	seen := false
	for _, a := range plan {
		seen = seen || a.key == "c"
	}
	if !seen {
		t.Errorf("plan of 3 after c arrived = %v, want c among them", plan)
	}
	if plan := f.plan([]string{"a"}, 10, nil, true); len(plan) != 1 || plan[0] != (allot{"a", 10}) {
		t.Errorf("plan of 10 for a lone key = %v, want all 10 to it", plan)
	}
	// What a claim took but has not committed counts: b, 3 ahead of a of
	// equal weight, waits.
	g := &fairShare{pass: map[string]float64{}}
	if plan := g.plan([]string{"a", "b"}, 3, map[string]int{"b": 3}, true); len(plan) != 1 || plan[0] != (allot{"a", 3}) {
		t.Errorf("plan of 3 with b's 3 pending = %v, want all 3 to a", plan)
	}
	if len(g.pass) != 2 || g.pass["a"] != 0 || g.pass["b"] != 0 {
		t.Errorf("passes after a plan = %v, want both still 0 (nothing charged)", g.pass)
	}
}

// TestStartsAllowed: one start per interval; a claim a little late keeps the
// phase, one long after starts afresh (no burst saved); at a high rate a
// claim starts what fell due since the TAT.
func TestStartsAllowed(t *testing.T) {
	r := errand.Rate{Count: 10, Per: time.Second} // 100ms apart
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		tat      time.Time
		want     int
		wantNext time.Time
		wantTAT  time.Time
	}{
		{"never started", time.Time{}, 1, time.Time{}, now.Add(100 * time.Millisecond)},
		{"idle long", now.Add(-time.Hour), 1, time.Time{}, now.Add(100 * time.Millisecond)},
		{"due now", now, 1, time.Time{}, now.Add(100 * time.Millisecond)},
		{"late 30ms", now.Add(-30 * time.Millisecond), 1, time.Time{}, now.Add(70 * time.Millisecond)},
		{"late 60ms", now.Add(-60 * time.Millisecond), 1, time.Time{}, now.Add(100 * time.Millisecond)},
		{"not yet", now.Add(40 * time.Millisecond), 0, now.Add(40 * time.Millisecond), time.Time{}},
	} {
		n, next := startsAllowed(r, c.tat, now, 5)

		if n != c.want || !next.Equal(c.wantNext) {
			t.Errorf("%s: startsAllowed = %d, %v; want %d, %v", c.name, n, next, c.want, c.wantNext)
		}
		if n > 0 {
			if tat := advanceTAT(r, c.tat, now, n); !tat.Equal(c.wantTAT) {
				t.Errorf("%s: TAT after %d starts = %v, want %v", c.name, n, tat, c.wantTAT)
			}
		}
	}
}

func TestStartsAllowedHighRate(t *testing.T) {
	r := errand.Rate{Count: 1000, Per: time.Second} // 1ms apart
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tat := now.Add(-20 * time.Millisecond)
	if n, _ := startsAllowed(r, tat, now, 100); n != 21 {
		t.Errorf("startsAllowed 20ms after the TAT at 1000/s = %d, want 21", n)
	}
	if got := advanceTAT(r, tat, now, 21); !got.Equal(now.Add(time.Millisecond)) {
		t.Errorf("TAT after 21 = %v, want now+1ms", got)
	}
}
