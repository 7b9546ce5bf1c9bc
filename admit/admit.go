// Package admit is flow control's admission side (#15): rate limits per key
// (GCRA, on buckets the store keeps, so one limit holds across every node of
// a cluster), the report of their state that answers carry (the RateLimit
// fields), and the drain rate behind backpressure's Retry-After and queued
// jobs' estimated start. The job service takes an operation's rate limit
// on every submit, whatever way it came in (REST, an operation's route, a
// batch, WebSocket, GraphQL, a broker bridge); httpapi takes http.rate_limit
// on every request.
package admit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// LimiterConfig tunes a Limiter. The zero value is ready to use.
type LimiterConfig struct {
	// Now is the clock. Defaults to errand.Now.
	Now func() time.Time
	// Lease, when positive, lets the limiter take a key's tokens from the
	// store ahead of its requests, to hand out over the next Lease (see
	// lease.go): a store shared over the network (PostgreSQL) is then asked
	// once for many requests. It never admits more than the store's bucket
	// gave; tokens not handed out in time lapse unused. Defaults to 0: every
	// take asks the store (SQLite's in-process buckets).
	Lease time.Duration
}

// Limiter takes rate limits' tokens from the store's buckets.
type Limiter struct {
	store  storage.FlowReader
	now    func() time.Time
	lease  time.Duration
	mu     sync.Mutex
	locals map[string]*local
	swept  time.Time
}

// NewLimiter returns a limiter over store's buckets.
func NewLimiter(store storage.FlowReader, cfg *LimiterConfig) *Limiter {
	var c LimiterConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Now == nil {
		c.Now = errand.Now
	}
	return &Limiter{store: store, now: c.Now, lease: c.Lease, locals: map[string]*local{}}
}

// Take takes n tokens of lim for the key's value (n is 1 for a request, the
// number of jobs for a batch's submits of one operation and key). It
// returns the limit's state for the answer's RateLimit fields; a refusal is
// a rate_limited error with Retry-After (when n tokens fit again) and the
// same state. Every state is also recorded in ctx's Report, if any.
func (l *Limiter) Take(ctx context.Context, policy string, lim *errand.RateLimit, value string, n int) (errand.RateStatus, error) {
	now := l.now()
	iv := lim.Rate.Interval()
	p := storage.TakeParams{Key: BucketKey(policy, lim, value), N: n, Interval: iv, Burst: lim.Burst, Now: now}
	var t storage.Take
	var err error
	extra := 0 // tokens still held here after this take
	if l.lease > 0 {
		t, extra, err = l.leased(ctx, p)
	} else {
		t, err = l.store.TakeTokens(ctx, p)
	}
	if err != nil {
		return errand.RateStatus{}, fmt.Errorf("rate limit %s: %w", policy, err)
	}
	st := Status(policy, lim, t.TAT, now)
	st.Remaining = min(st.Remaining+extra, lim.Burst)
	Record(ctx, st)
	if t.Admitted {
		return st, nil
	}
	e := &errand.Error{Code: errand.ERATELIMITED, Rate: &st}
	if n > lim.Burst {
		e.Message = fmt.Sprintf("%d requests at once are more than the rate limit %s allows (%s, burst %d)", n, policy, lim.Rate, lim.Burst)
		e.RetryAfter = st.Window
		return st, e
	}
	// n tokens fit once max(TAT, now) + n·iv − now ≤ burst·iv.
	e.RetryAfter = max(t.TAT.Add(time.Duration(n-lim.Burst)*iv).Sub(now), time.Millisecond)
	e.Message = fmt.Sprintf("rate limit %s (%s, burst %d) reached: retry in %s", policy, lim.Rate, lim.Burst,
		e.RetryAfter.Round(time.Millisecond))
	return st, e
}

// Status is a limit's state at now, its bucket's TAT given.
func Status(policy string, lim *errand.RateLimit, tat, now time.Time) errand.RateStatus {
	iv := lim.Rate.Interval()
	depth := time.Duration(lim.Burst) * iv
	used := max(tat.Sub(now), 0)
	return errand.RateStatus{Policy: policy, Quota: lim.Burst, Window: depth,
		Remaining: max(min(int((depth-used)/iv), lim.Burst), 0), Reset: used}
}

// BucketKey names the bucket of a limit and a key's value: a limit changed
// in configuration starts new buckets. Values that are long or hold bytes a
// database text cannot are hashed.
func BucketKey(policy string, lim *errand.RateLimit, value string) string {
	if len(value) > 128 || strings.ContainsRune(value, 0) || !validUTF8(value) {
		sum := sha256.Sum256([]byte(value))
		value = "#" + hex.EncodeToString(sum[:16])
	}
	return policy + "|" + lim.Rate.String() + "|" + strconv.Itoa(lim.Burst) + "|" + lim.Key.String() + "|" + value
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// Report collects the rate limits' states of one request, for its answer.
type Report struct {
	mu   sync.Mutex
	list []errand.RateStatus
}

type reportKey struct{}

// WithReport returns a context whose takes are recorded in the returned Report.
func WithReport(ctx context.Context) (context.Context, *Report) {
	r := &Report{}
	return context.WithValue(ctx, reportKey{}, r), r
}

// ReportOf returns ctx's Report, or nil.
func ReportOf(ctx context.Context) *Report {
	r, _ := ctx.Value(reportKey{}).(*Report)
	return r
}

// Record adds st to ctx's Report (if any). Of two states of one policy (a
// batch's keys), the one with fewer requests remaining is kept.
func Record(ctx context.Context, st errand.RateStatus) {
	r := ReportOf(ctx)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.list {
		if r.list[i].Policy == st.Policy {
			if st.Remaining < r.list[i].Remaining {
				r.list[i] = st
			}
			return
		}
	}
	r.list = append(r.list, st)
}

// Statuses returns the states recorded, in the order first recorded.
func (r *Report) Statuses() []errand.RateStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]errand.RateStatus(nil), r.list...)
}
