package httptarget

import (
	"context"
	"testing"
	"time"
)

// TestGate: a push-back holds every call until its Retry-After, halves the
// calls at once, and successes ramp them back up to the workers.
func TestGate(t *testing.T) {
	g := newGate(8)
	ctx := context.Background()
	for range 8 {
		if err := g.acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	g.release(callPushedBack, 300*time.Millisecond)
	if limit, _ := g.state(); limit != 4 {
		t.Errorf("limit after one push-back from 8 = %v, want 4", limit)
	}
	for range 7 {
		g.release(callOther, 0)
	}
	start := time.Now()
	if err := g.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 290*time.Millisecond {
		t.Errorf("a call went %v after a push-back with Retry-After 300ms, want none before 300ms", waited)
	}
	// 4 in flight at most now: a fifth waits.
	for range 3 {
		_ = g.acquire(ctx)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := g.acquire(short); err == nil {
		t.Errorf("a fifth call went at once with the limit at 4")
	}
	for range 4 {
		g.release(callSucceeded, 0)
	}
	if limit, _ := g.state(); limit <= 4 || limit >= 5.5 {
		t.Errorf("limit after 4 successes from 4 = %v, want a little over 4 (additive increase)", limit)
	}
	for range 200 {
		_ = g.acquire(ctx)
		g.release(callSucceeded, 0)
	}
	if limit, _ := g.state(); limit != 8 {
		t.Errorf("limit after many successes = %v, want the workers (8)", limit)
	}
}
