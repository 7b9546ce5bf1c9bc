package queue

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// Flow control on the lease path (#15): pause, start_rate, per-key
// concurrency and fairness. Each lease transaction reads the operation's
// state from the store, so every node sees a pause and shares one start rate
// and one count of running jobs per key; fairness' round robin is this node's
// (see fairShare).

// maxFairKeys bounds the fair keys one lease reads (the first by value).
const maxFairKeys = 1000

// take is what one operation's turn of a lease claims.
type take struct {
	jobs []*errand.Job
	// left: queued jobs were left that this transaction read (and, on
	// PostgreSQL, locked): wake other workers after commit.
	left bool
	// next, when not zero, is when start_rate lets the operation start again.
	next time.Time
	// fair, with fairness, is the round robin to charge with started (jobs
	// by fair key) once the claim commits.
	fair    *fairShare
	started map[string]int
}

// claimOperation claims up to limit jobs of one operation within its flow
// control and budget bytes.
func (q *Queue) claimOperation(tx storage.Tx, name string, limit int, budget int64, now time.Time) (take, error) {
	op := q.ops[name]
	st, err := tx.OperationFlow(name)
	if err != nil || st.Paused {
		return take{}, err
	}
	r := op.Flow.StartRate
	if r.IsZero() {
		return q.claimKeyed(tx, op, limit, budget)
	}
	tat, err := tx.LockStartTAT(name)
	if err != nil {
		return take{}, err
	}
	n, next := startsAllowed(r, tat, now, limit)
	if n == 0 {
		return take{next: next}, nil
	}
	t, err := q.claimKeyed(tx, op, n, budget)
	if err == nil && len(t.jobs) > 0 {
		err = tx.PutStartTAT(name, advanceTAT(r, tat, now, len(t.jobs)))
	}
	return t, err
}

// claimKeyed claims up to limit jobs of op within its per-key concurrency
// and fairness.
func (q *Queue) claimKeyed(tx storage.Tx, op errand.Operation, limit int, budget int64) (take, error) {
	name := op.Name
	var room *keyRoom
	if ck := op.Flow.ConcurrencyKey; ck != nil {
		running, err := tx.RunningByKey(name)
		if err != nil {
			return take{}, err
		}
		room = &keyRoom{limit: ck.Limit, running: running}
	}
	tenant, _ := q.scope.tenant(name) // checked by Lease
	p := storage.QueuedParams{Tenant: tenant, Operation: name, MaxBytes: budget}
	switch {
	case op.Flow.Fairness != nil:
		return q.fairTake(tx, p, limit, room)
	case room == nil:
		// No key to share or cap by: the plain claim, a statement the
		// drivers keep prepared (QueuedJobsWhere's text is built per call,
		// and SQLite parses it again each time: a fifth of a batched cycle's
		// CPU).
		js, err := tx.QueuedJobs(tenant, name, limit, budget)
		if err != nil {
			return take{}, fmt.Errorf("queued jobs of %s: %w", name, err)
		}
		var used int64
		for _, j := range js {
			used += j.Bytes()
		}
		return take{jobs: js, left: used >= budget}, nil
	}
	return fetch(tx, p, limit, room, map[string]bool{})
}

// startCatchUp is how late a claim may come after the TAT and still count
// from it (keeping the rate's phase, and at high rates starting the starts
// due meanwhile); a claim later than that counts from now: no burst is saved
// while the operation idles.
const startCatchUp = 50 * time.Millisecond

// startsAllowed is how many of want jobs start_rate r lets start at now given
// the stored TAT (GCRA, no burst: one start per interval), and, when none,
// when the next may.
func startsAllowed(r errand.Rate, tat, now time.Time, want int) (int, time.Time) {
	if tat.After(now) {
		return 0, tat
	}
	return min(want, 1+int(now.Sub(startBase(tat, now))/r.Interval())), time.Time{}
}

// advanceTAT is the TAT after n starts at now.
func advanceTAT(r errand.Rate, tat, now time.Time, n int) time.Time {
	return startBase(tat, now).Add(time.Duration(n) * r.Interval())
}

// startBase is the TAT a claim at now counts from: the stored one when the
// claim is less than startCatchUp late, else now.
func startBase(tat, now time.Time) time.Time {
	if now.Sub(tat) < startCatchUp {
		return tat
	}
	return now
}

// keyRoom is what per-key concurrency leaves in one lease transaction: the
// running jobs by key, with those this transaction starts.
type keyRoom struct {
	limit   int
	running map[string]int
}

// full are the keys at their limit, in order.
func (k *keyRoom) full() []string {
	var out []string
	for key, n := range k.running {
		if n >= k.limit {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}

// take counts j as started when its key has room; false when it has none.
func (k *keyRoom) take(j *errand.Job) bool {
	if k.running[j.ConcurrencyKey] >= k.limit {
		return false
	}
	k.running[j.ConcurrencyKey]++
	return true
}

// fetch claims up to want queued jobs p selects, none of those in taken (the
// jobs this claim took already: still queued until it starts them, so a read
// finds them again); with room, none of a key at its limit. A read may return
// more of one key than it has room for (the rest stay queued): the key is
// then left out of the next read, a few times over.
func fetch(tx storage.Tx, p storage.QueuedParams, want int, room *keyRoom, taken map[string]bool) (take, error) {
	var t take
	for round := 0; round < 8 && len(t.jobs) < want; round++ {
		if room != nil {
			p.SkipKeys = room.full()
		}
		p.Limit = want - len(t.jobs) + len(taken)
		js, err := tx.QueuedJobsWhere(p)
		if err != nil {
			return t, fmt.Errorf("queued jobs of %s: %w", p.Operation, err)
		}
		took, fresh := 0, 0
		for _, j := range js {
			if taken[j.ID] {
				continue
			}
			fresh++
			if len(t.jobs) == want || (room != nil && !room.take(j)) || p.MaxBytes < 0 {
				t.left = true
				continue
			}
			t.jobs = append(t.jobs, j)
			taken[j.ID] = true
			spend(&p, j)
			took++
		}
		if len(js) < p.Limit || took == fresh || p.MaxBytes < 0 {
			break
		}
	}
	return t, nil
}

// fairTake claims up to want jobs of an operation with fairness: its fair
// keys with queued jobs share them by the node's round robin, each key's
// jobs in run order, all keys' heads read in one statement. Work-conserving:
// what a key cannot use goes to the others, in a few more rounds.
func (q *Queue) fairTake(tx storage.Tx, p storage.QueuedParams, want int, room *keyRoom) (take, error) {
	keys, err := tx.FairKeys(p.Tenant, p.Operation, maxFairKeys)
	if err != nil {
		return take{}, err
	}
	none := len(keys) == 0
	share := q.fair(p.Operation)
	t := take{fair: share}
	taken, byKey := map[string]bool{}, map[string]int{}
	t.started = byKey
	for round := 0; round < 4 && want > len(t.jobs) && len(keys) > 0 && p.MaxBytes >= 0; round++ {
		plan := share.plan(keys, want-len(t.jobs), byKey, round == 0)
		allotted := make(map[string]int, len(plan))
		for _, a := range plan {
			allotted[a.key] = a.n
		}
		quotas := make([]storage.KeyQuota, len(plan))
		for i, a := range plan {
			// An earlier round's jobs of the key are still queued: read past them.
			quotas[i] = storage.KeyQuota{Key: a.key, N: a.n + byKey[a.key]}
		}
		if room != nil {
			p.SkipKeys = room.full()
		}
		js, err := tx.QueuedHeads(p, quotas)
		if err != nil {
			return t, err
		}
		got := map[string]int{}
		for _, j := range js {
			if taken[j.ID] {
				continue
			}
			if got[j.FairKey] == allotted[j.FairKey] || (room != nil && !room.take(j)) || p.MaxBytes < 0 {
				t.left = true
				continue
			}
			t.jobs = append(t.jobs, j)
			taken[j.ID] = true
			got[j.FairKey]++
			byKey[j.FairKey]++
			spend(&p, j)
		}
		keys = keys[:0]
		for _, a := range plan {
			if got[a.key] == a.n {
				keys = append(keys, a.key)
			}
		}
	}
	if len(t.jobs) < want && p.MaxBytes >= 0 && (none || len(keys) > 0) {
		// What the rounds left, or, when no job has a fair key, those
		// queued before fairness was configured (while keyed jobs wait,
		// they wait behind them): in run order.
		rest, err := fetch(tx, p, want-len(t.jobs), room, taken)
		t.jobs, t.left = append(t.jobs, rest.jobs...), t.left || rest.left
		return t, err
	}
	return t, nil
}

// spend takes j's bytes from p's budget; a budget spent is -1 (0 would mean
// none).
func spend(p *storage.QueuedParams, j *errand.Job) {
	if p.MaxBytes > 0 {
		if p.MaxBytes -= j.Bytes(); p.MaxBytes <= 0 {
			p.MaxBytes = -1
		}
	}
}

// fair returns the round robin of an operation on this node.
func (q *Queue) fair(operation string) *fairShare {
	q.shares.mu.Lock()
	defer q.shares.mu.Unlock()
	f := q.shares.by[operation]
	if f == nil {
		f = &fairShare{pass: map[string]float64{}, weights: q.ops[operation].Flow.Fairness.Weights}
		q.shares.by[operation] = f
	}
	return f
}

// fairShares are a node's round robins, by operation (shared by every For
// view of the queue).
type fairShares struct {
	mu sync.Mutex
	by map[string]*fairShare
}

// fairShare is weighted round robin between an operation's fair keys by
// stride scheduling, on one node: each key has a pass; the key with the
// lowest pass goes next and its pass grows by 1/weight per job it starts. A
// key that has had no queued jobs enters at the lowest pass of the keys
// present, so it is served next without credit for the time it was idle; a
// key with a backlog never delays it by more than one round. Every node keeps
// its own passes: each node's leases hold the shares, and so, approximately,
// does the cluster's.
type fairShare struct {
	mu      sync.Mutex
	pass    map[string]float64
	weights map[string]int
}

// allot is one key's part of a plan.
type allot struct {
	key string
	n   int
}

// plan divides n leases between keys (those with queued jobs), in the order
// they go, counting what this claim has taken but not yet committed
// (pending, by key); it changes no pass (charge does, once the claim
// commits). With forget (keys is every key with queued jobs), keys not among
// them are forgotten.
func (f *fairShare) plan(keys []string, n int, pending map[string]int, forget bool) []allot {
	f.mu.Lock()
	defer f.mu.Unlock()
	present := make(map[string]bool, len(keys))
	low, any := 0.0, false
	for _, k := range keys {
		present[k] = true
		if p, ok := f.pass[k]; ok && (!any || p < low) {
			low, any = p, true
		}
	}
	for k := range f.pass {
		if forget && !present[k] {
			delete(f.pass, k)
		}
	}
	pass := make(map[string]float64, len(keys))
	for _, k := range keys {
		p, ok := f.pass[k]
		if !ok {
			p = low
			f.pass[k] = p
		}
		pass[k] = p + float64(pending[k])/float64(f.weight(k))
	}
	var out []allot
	index := map[string]int{}
	for range n {
		best := ""
		for _, k := range keys {
			if best == "" || pass[k] < pass[best] || (pass[k] == pass[best] && k < best) {
				best = k
			}
		}
		pass[best] += 1 / float64(f.weight(best))
		if i, ok := index[best]; ok {
			out[i].n++
			continue
		}
		index[best] = len(out)
		out = append(out, allot{key: best, n: 1})
	}
	return out
}

// charge records that keys started jobs (n by key): after the claim that
// started them committed, as WithTx may run a claim more than once.
func (f *fairShare) charge(started map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, n := range started {
		f.pass[key] += float64(n) / float64(f.weight(key))
	}
}

func (f *fairShare) weight(key string) int { return cmp.Or(f.weights[errand.KeyValue(key)], 1) }

// freed wakes, after commit, the workers waiting for an operation whose
// queued jobs may have waited for j's key (per-key concurrency) when j has
// stopped running.
func (q *Queue) freed(tx storage.Tx, j *errand.Job) {
	if j.Status != errand.StatusRunning && q.operation(j).Flow.ConcurrencyKey != nil {
		tx.JobsReady(j.Operation)
	}
}

// Pause pauses (paused true) or resumes an operation's leases on every node:
// submits are still accepted and jobs wait queued; running jobs run on. The
// state is stored, so it outlives restarts. A resume wakes the workers
// waiting for the operation. Who may is the caller's to check
// (operations:pause@*).
func (q *Queue) Pause(ctx context.Context, name string, paused bool) (storage.OperationFlow, error) {
	if _, ok := q.ops[name]; !ok {
		return storage.OperationFlow{}, errand.Errorf(errand.EOPNOTFOUND, "operation %q is not declared", errand.Truncate(name, 64))
	}
	var st storage.OperationFlow
	err := q.store.WithTx(ctx, func(tx storage.Tx) error {
		now := q.cfg.Now().UTC()
		if err := tx.SetPaused(name, paused, now); err != nil {
			return err
		}
		if !paused {
			tx.JobsReady(name)
		}
		var err error
		st, err = tx.OperationFlow(name)
		return err
	})
	return st, err
}
