package httpapi

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/admit"
)

// Rate limits over HTTP (#15): http.rate_limit on every authenticated
// request (and every submit and publish on a WebSocket), the answers'
// RateLimit-Policy and RateLimit fields. The fields follow
// draft-ietf-httpapi-ratelimit-headers-10 (the structured-field form of
// revisions 08 to 10): a list item per limit that applied, named by its
// policy ("http", or the operation's name), with the quota q (the burst),
// its window w and, in RateLimit, what remains r and the seconds t until the
// quota is whole again.

// httpPolicy names http.rate_limit in the RateLimit fields.
const httpPolicy = "http"

// limits are the HTTP server's rate limit and the limiter taking it.
type limits struct {
	limiter *admit.Limiter
	http    *errand.RateLimit // nil: none
}

// rateLimit takes http.rate_limit for each request and gives the request a
// Report that the operation's limits (taken by the job service) add to; the
// answer carries what it holds (setRateFields, from writeError and the
// submit handlers). A refused request answers 429 rate_limited.
func (a *access) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, _ := admit.WithReport(r.Context())
		r = r.WithContext(ctx)
		if err := a.takeHTTP(ctx, principal(r), r.Header.Get); err != nil {
			a.fail(w, r, err)
			return
		}
		setRateFields(w.Header(), ctx)
		next.ServeHTTP(w, r)
	})
}

// takeHTTP takes one token of http.rate_limit for p (and a header key's
// value from header).
func (a *access) takeHTTP(ctx context.Context, p errand.Principal, header func(string) string) error {
	lim := a.limits.http
	if lim == nil {
		return nil
	}
	_, err := a.limits.limiter.Take(ctx, httpPolicy, lim, lim.Key.Value(errand.KeySource{Principal: &p, Header: header}), 1)
	return err
}

// setRateFields writes the RateLimit-Policy and RateLimit fields of the
// limits ctx's Report holds (none when it holds none).
func setRateFields(h http.Header, ctx context.Context) {
	rep := admit.ReportOf(ctx)
	if rep == nil {
		return
	}
	sts := rep.Statuses()
	if len(sts) == 0 {
		return
	}
	policies, states := make([]string, len(sts)), make([]string, len(sts))
	for i, st := range sts {
		name := sfString(st.Policy)
		policies[i] = name + ";q=" + strconv.Itoa(st.Quota) + ";w=" + strconv.Itoa(ceilSeconds(st.Window, 1))
		states[i] = name + ";r=" + strconv.Itoa(st.Remaining) + ";t=" + strconv.Itoa(ceilSeconds(st.Reset, 0))
	}
	// As the draft spells them (Set would send Ratelimit; names are
	// case-insensitive, HTTP/2 lowercases them anyway).
	h["RateLimit-Policy"] = []string{strings.Join(policies, ", ")}
	h["RateLimit"] = []string{strings.Join(states, ", ")}
}

// ceilSeconds is d in whole seconds, rounded up, at least floor.
func ceilSeconds(d time.Duration, floor int) int {
	return max(int(math.Ceil(d.Seconds())), floor)
}

// sfString is s as a structured-field string (RFC 9651): quoted, with " and
// \ escaped and anything but printable ASCII dropped.
func sfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
