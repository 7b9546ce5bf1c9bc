package admit

import (
	"context"
	"time"

	"github.com/errandhq/errand/storage"
)

// Leased tokens (LimiterConfig.Lease): a node asks the shared bucket for a
// chunk of a key's tokens at once and hands them out to that key's requests
// until they run out or the lease lapses. The bucket counted them all when
// it gave them, so the cluster never admits more than the limit: the cost
// is the other way, tokens that lapse unused. The chunk adapts to the key's
// requests on this node: it doubles when a chunk ran out within its lease
// and halves when one lapsed with tokens left, and it is never more than a
// sixteenth of the bucket (a small burst is taken one token at a time, so
// it stays exact and no node hoards it). A take the bucket as last seen here
// refuses is refused here, without asking: other nodes only ever move the
// bucket's TAT later, so the store could not admit it either.

// local is one key's leased tokens on this node.
type local struct {
	mu    chan struct{} // a one-token lock: one refill of a key at a time
	left  int           // tokens taken, not yet handed out
	until time.Time     // when they lapse
	chunk int           // how many to take at the next refill
	tat   time.Time     // the bucket's TAT after the last take
}

// leased takes p.N tokens from the key's leased ones, refilling them from
// the store when they ran out or lapsed; extra is how many stay leased.
func (l *Limiter) leased(ctx context.Context, p storage.TakeParams) (t storage.Take, extra int, err error) {
	loc := l.local(p.Key, p.Now)
	select {
	case loc.mu <- struct{}{}:
	case <-ctx.Done():
		return storage.Take{}, 0, ctx.Err()
	}
	defer func() { <-loc.mu }()
	if p.Now.Before(loc.until) && loc.left >= p.N {
		loc.left -= p.N
		return storage.Take{Admitted: true, TAT: loc.tat}, loc.left, nil
	}
	if !loc.tat.IsZero() && !storage.GCRA(loc.tat, p).Admitted {
		// Refused by the bucket as last seen here: other nodes' takes only
		// move its TAT later, so the store would refuse too.
		loc.left = 0
		return storage.Take{TAT: loc.tat}, 0, nil
	}
	switch {
	case loc.left > 0 && !p.Now.Before(loc.until): // lapsed with tokens left: ask for fewer
		loc.chunk = max(loc.chunk/2, 1)
	case p.Now.Before(loc.until): // ran out within the lease: ask for more
		loc.chunk = min(loc.chunk*2, max(p.Burst/16, 1))
	}
	want := p
	want.N = max(p.N, loc.chunk)
	t, err = l.store.TakeTokens(ctx, want)
	if err == nil && !t.Admitted && want.N > p.N { // the bucket has fewer: take only what is asked
		loc.chunk = 1
		want.N = p.N
		t, err = l.store.TakeTokens(ctx, want)
	}
	if err != nil {
		return t, 0, err
	}
	loc.tat = t.TAT
	if !t.Admitted {
		loc.left = 0
		return t, 0, nil
	}
	loc.left, loc.until = want.N-p.N, p.Now.Add(l.lease)
	return t, loc.left, nil
}

// local returns the leased tokens of key, forgetting once a minute the keys
// whose lease lapsed a minute ago.
func (l *Limiter) local(key string, now time.Time) *local {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, v := range l.locals {
			select {
			case v.mu <- struct{}{}: // not in use
				if now.Sub(v.until) > time.Minute {
					delete(l.locals, k)
				}
				<-v.mu
			default:
			}
		}
		l.swept = now
	}
	loc := l.locals[key]
	if loc == nil {
		loc = &local{mu: make(chan struct{}, 1), chunk: 1}
		l.locals[key] = loc
	}
	return loc
}
