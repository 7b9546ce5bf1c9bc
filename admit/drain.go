package admit

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/errandhq/errand/storage"
)

// Drain measures how fast each operation's queue drains: the jobs that
// started in the last Window, per second, counted in the store (every
// node's starts) and kept for CacheFor.
type Drain struct {
	store storage.FlowReader
	now   func() time.Time
	// Window is how far back starts are counted. Defaults to 60 seconds.
	Window time.Duration
	// CacheFor is how long a measured rate is reused. Defaults to 2 seconds.
	CacheFor time.Duration

	mu    sync.Mutex
	rates map[string]measured
}

type measured struct {
	perSecond float64
	at        time.Time
}

// NewDrain returns a drain meter over store; now is the clock (nil: time.Now).
func NewDrain(store storage.FlowReader, now func() time.Time) *Drain {
	if now == nil {
		now = time.Now
	}
	return &Drain{store: store, now: now, Window: time.Minute, CacheFor: 2 * time.Second, rates: map[string]measured{}}
}

// Rate is the operation's recent drain rate in jobs per second: the starts
// of the window over the time they span (from the earliest of them, so an
// operation that began draining a moment ago is not averaged over the
// whole window), 0 when none started.
func (d *Drain) Rate(ctx context.Context, operation string) (float64, error) {
	now := d.now()
	d.mu.Lock()
	m, ok := d.rates[operation]
	d.mu.Unlock()
	if ok && now.Sub(m.at) < d.CacheFor {
		return m.perSecond, nil
	}
	n, first, err := d.store.Started(ctx, operation, now.Add(-d.Window))
	if err != nil {
		return 0, err
	}
	rate := 0.0
	if n > 0 {
		rate = float64(n) / max(now.Sub(first).Seconds(), 1)
	}
	d.mu.Lock()
	d.rates[operation] = measured{rate, now}
	d.mu.Unlock()
	return rate, nil
}

// Wait is how long n jobs take to drain at rate (jobs per second); ok is
// false when nothing drains (rate 0).
func Wait(n int, rate float64) (time.Duration, bool) {
	if rate <= 0 {
		return 0, false
	}
	return time.Duration(math.Ceil(float64(n) / rate * float64(time.Second))), true
}
