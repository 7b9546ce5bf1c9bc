package queue

import (
	"math/rand/v2"
	"time"

	"github.com/errandhq/errand"
)

// Backoff is how long to wait before attempt+1 after attempt failed: exponential
// from the policy's Initial, capped at its Max, with "equal jitter" (a random
// point in the upper half) so that jobs failing together do not retry together.
func Backoff(p errand.RetryPolicy, attempt int) time.Duration {
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(half+1)
}
