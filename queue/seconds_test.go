package queue

import (
	"math"
	"testing"
	"time"
)

// TestSecondsNeverWrap: a client's seconds, however large, become at most the
// limit; converting first would wrap 1e300 seconds around to a negative Duration
// (a lease that ended before it began).
func TestSecondsNeverWrap(t *testing.T) {
	def, limit := time.Minute, time.Hour
	for s, want := range map[float64]time.Duration{0: def, 1.5: 1500 * time.Millisecond, 3600: limit, 1e10: limit,
		1e300: limit, math.MaxFloat64: limit, math.Inf(1): limit, math.NaN(): limit} {
		if got := seconds(s, def, limit); got != want {
			t.Errorf("seconds(%g) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[float64]bool{0: true, 1e300: true, -1: false, math.Inf(1): false, math.NaN(): false} {
		if got := validSeconds(s); got != want {
			t.Errorf("validSeconds(%g) = %v, want %v", s, got, want)
		}
	}
}
