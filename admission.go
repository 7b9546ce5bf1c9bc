package errand

import "time"

// RateStatus is one rate limit's state for the caller's key after a request:
// what the RateLimit-Policy and RateLimit fields of an answer show.
type RateStatus struct {
	// Policy names the limit: "http" for http.rate_limit, an operation's
	// name for its rate_limit.
	Policy string
	// Quota is the most requests the key may make at once (the burst).
	Quota int
	// Window is how long a spent quota takes to come back whole
	// (Quota × the rate's interval).
	Window time.Duration
	// Remaining is how many more requests the key may make now.
	Remaining int
	// Reset is how long until the quota is whole again.
	Reset time.Duration
}
