package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// preference is what a client asked for with the Prefer header (RFC 7240).
type preference struct {
	async bool          // respond-async
	wait  time.Duration // wait=N; -1 when absent
}

// parsePrefer reads every Prefer header. Unknown or malformed preferences are
// ignored, as RFC 7240 asks.
func parsePrefer(h http.Header) preference {
	p := preference{wait: -1}
	for _, line := range h.Values("Prefer") {
		for _, part := range strings.Split(line, ",") {
			tok, _, _ := strings.Cut(part, ";") // drop parameters
			name, val, _ := strings.Cut(strings.TrimSpace(tok), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "respond-async":
				p.async = true
			case "wait":
				n, err := strconv.ParseFloat(strings.Trim(strings.TrimSpace(val), `"`), 64)
				if err == nil && n >= 0 && n < 1e6 {
					p.wait = time.Duration(n * float64(time.Second))
				}
			}
		}
	}
	return p
}

// waitFor is how long a submit waits: respond-async wins, then wait=N, then the
// operation's default; never more than limit.
func (p preference) waitFor(def, limit time.Duration) time.Duration {
	switch {
	case p.async:
		return 0
	case p.wait >= 0:
		return min(p.wait, limit)
	}
	return min(def, limit)
}
