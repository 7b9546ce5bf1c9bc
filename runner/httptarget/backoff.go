package httptarget

import (
	"context"
	"sync"
	"time"
)

// gate paces an operation's calls to its target on this node: a target that
// pushes back (429 or 503) with Retry-After gets no call from this node
// before that time has passed, and the calls in flight at once are then
// limited by additive increase, multiplicative decrease (AIMD): each push-back
// halves the limit (to at least 1), each success raises it by 1/limit (about
// one more call at once per round of successes), up to the handler's workers.
// The state is per node: on a cluster each node backs off on the answers it
// hears (every node calling the target hears its push-back soon).
type gate struct {
	mu       sync.Mutex
	max      float64
	limit    float64   // calls at once allowed now
	until    time.Time // no call before
	inflight int
	changed  chan struct{} // closed (and replaced) when a call may have become possible
}

func newGate(workers int) *gate {
	w := float64(max(workers, 1))
	return &gate{max: w, limit: w, changed: make(chan struct{})}
}

// acquire waits until a call may go, or ctx ends.
func (g *gate) acquire(ctx context.Context) error {
	for {
		g.mu.Lock()
		wait := time.Until(g.until)
		if wait <= 0 && g.inflight < int(g.limit) {
			g.inflight++
			g.mu.Unlock()
			return nil
		}
		changed := g.changed
		g.mu.Unlock()
		if err := waitFor(ctx, changed, wait); err != nil {
			return err
		}
	}
}

// waitFor waits until changed is closed, wait has passed (when positive) or
// ctx ends.
func waitFor(ctx context.Context, changed <-chan struct{}, wait time.Duration) error {
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-changed:
	case <-timer:
	}
	return nil
}

// The outcomes of a call, for release.
const (
	callOther      = iota // neither: the limit stays
	callSucceeded         // a 2xx: additive increase
	callPushedBack        // a 429 or 503: multiplicative decrease, and wait its Retry-After
)

// release ends a call with its outcome; retryAfter is a push-back's
// Retry-After (0 when it gave none).
func (g *gate) release(outcome int, retryAfter time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
	switch outcome {
	case callPushedBack:
		g.limit = max(1, g.limit/2)
		if until := time.Now().Add(retryAfter); until.After(g.until) {
			g.until = until
		}
	case callSucceeded:
		g.limit = min(g.max, g.limit+1/g.limit)
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// state is the limit and the time before which no call goes (for tests and logs).
func (g *gate) state() (limit float64, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit, g.until
}
