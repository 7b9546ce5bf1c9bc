package config

import (
	"testing"
	"time"
)

// TestParseDurationBounds: days beyond what a Duration holds (292 years) are an
// error, not a wrapped-around negative or tiny duration.
func TestParseDurationBounds(t *testing.T) {
	for s, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "0.5d": 12 * time.Hour, "90s": 90 * time.Second} {
		if got, err := ParseDuration(s); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"1e11d", "200000d", "Infd", "NaNd", "-1d", "9999999999h"} {
		if got, err := ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", s, got)
		}
	}
}
