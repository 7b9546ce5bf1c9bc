package job

import (
	"testing"
	"time"

	"github.com/errandhq/errand"
)

func TestBackoff(t *testing.T) {
	p := errand.RetryPolicy{MaxAttempts: 10, Initial: time.Second, Max: 10 * time.Second}
	for attempt, full := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		seen := map[time.Duration]bool{}
		for range 200 {
			got := Backoff(p, attempt)
			if got < full/2 || got > full {
				t.Fatalf("Backoff(attempt %d) = %v, want between %v and %v", attempt, got, full/2, full)
			}
			seen[got] = true
		}
		if len(seen) < 10 {
			t.Errorf("Backoff(attempt %d) took %d distinct values in 200 tries: no jitter", attempt, len(seen))
		}
	}
}
