package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// The group-commit model test: many concurrent WithTx calls, which drivers may
// run together in one transaction, a random share failing at a random point
// (before, between or after their writes; as the domain's answer, as a plain
// error, or as a statement the database refuses), checked against a model
// kept by the test: every successful call's writes are there exactly once,
// every failed call's writes never, and no call fails that was not made to.

// groupStep is one thing a call does.
type groupStep int

const (
	stepInsert    groupStep = iota // a new job and its job.created event
	stepIncrement                  // read a shared counter job, raise its attempt, append an event
	stepRead                       // read a shared job and write nothing
	stepDelete                     // delete a job the worker made earlier (a statement sent at once)
	stepKinds
)

// groupFail is how a call fails, when it does.
type groupFail int

const (
	failNone      groupFail = iota
	failAnswer              // the domain's own answer (an errand.Error)
	failPlain               // an unexpected error
	failStatement           // a write the database refuses (a duplicate primary key)
)

var errPlain = errors.New("injected plain failure")

// groupCall is one call's script, made from its seed, so a driver that runs
// fn again replays the same script.
type groupCall struct {
	id     int
	steps  []groupStep
	failAt int // the step before which the call fails (len(steps): after all)
	fail   groupFail
	// What the last run of fn did, read after WithTx returns.
	inserted, deleted []string
	counters          []int
	markers           []string
}

// groupMarker names one event a call appended.
func groupMarker(call, step int) string { return fmt.Sprintf("c%d.s%d", call, step) }

func newGroupCall(id int, seed uint64) *groupCall {
	r := rand.New(rand.NewPCG(seed, uint64(id)))
	c := &groupCall{id: id, steps: make([]groupStep, 1+r.IntN(5))}
	for i := range c.steps {
		c.steps[i] = groupStep(r.IntN(int(stepKinds)))
	}
	c.failAt = -1
	if r.IntN(10) < 3 {
		c.fail = groupFail(1 + r.IntN(3))
		c.failAt = r.IntN(len(c.steps) + 1)
	}
	return c
}

// Each worker has counter jobs of its own: rows locked by one transaction at
// a time, so the test measures the group's bookkeeping, not lock waits (the
// database's own locking is not what is under test).
const groupWorkers, countersPer = 24, 2

// groupWorld is the state the calls share.
type groupWorld struct {
	counters []string // ids of the shared counter jobs
	mu       sync.Mutex
	own      map[int][]string // per worker: committed jobs it may delete
}

func groupJob(id string) *errand.Job {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	return &errand.Job{ID: id, Tenant: "g", Owner: "o", Operation: "op", Status: errand.StatusQueued,
		Input: json.RawMessage(`{}`), MaxAttempts: 1, TimeoutSeconds: 60, CreatedAt: now, RunAt: now}
}

func groupEvent(stream, marker string) *errand.Event {
	return &errand.Event{Stream: stream, Tenant: "g", Type: "test.step", Time: errand.Now(),
		Data: json.RawMessage(`{"marker":"` + marker + `"}`)}
}

// run is the call's fn: the same script on every run, its effects recorded afresh.
func (c *groupCall) run(tx storage.Tx, w *groupWorld, worker int, deletable string) error {
	c.inserted, c.deleted, c.counters, c.markers = nil, nil, nil, nil
	r := rand.New(rand.NewPCG(uint64(c.id), 7))
	for i, st := range c.steps {
		if i == c.failAt {
			return c.failNow(tx, w)
		}
		marker := groupMarker(c.id, i)
		switch st {
		case stepInsert:
			id := fmt.Sprintf("job_g%05d_%d", c.id, i)
			if err := tx.InsertJob(groupJob(id)); err != nil {
				return err
			}
			if err := tx.InsertEvent(groupEvent(id, marker)); err != nil {
				return err
			}
			c.inserted = append(c.inserted, id)
			c.markers = append(c.markers, marker)
		case stepIncrement:
			n := worker*countersPer + r.IntN(countersPer)
			j, err := tx.GetJob(w.counters[n])
			if err != nil {
				return fmt.Errorf("get counter %d: %w", n, err)
			}
			j.Attempt++
			if err := tx.UpdateJob(j); err != nil {
				return err
			}
			if err := tx.InsertEvent(groupEvent(w.counters[n], marker)); err != nil {
				return err
			}
			c.counters = append(c.counters, n)
			c.markers = append(c.markers, marker)
		case stepRead:
			if _, err := tx.GetJob(w.counters[worker*countersPer+r.IntN(countersPer)]); err != nil {
				return fmt.Errorf("read: %w", err)
			}
		case stepDelete:
			if deletable == "" || contains(c.deleted, deletable) {
				continue
			}
			if err := tx.DeleteJob(deletable); err != nil {
				return fmt.Errorf("delete %s: %w", deletable, err)
			}
			c.deleted = append(c.deleted, deletable)
		}
	}
	if c.failAt == len(c.steps) {
		return c.failNow(tx, w)
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (c *groupCall) failNow(tx storage.Tx, w *groupWorld) error {
	switch c.fail {
	case failAnswer:
		return errand.Errorf(errand.ECONFLICT, "call %d: injected conflict", c.id)
	case failPlain:
		return fmt.Errorf("call %d: %w", c.id, errPlain)
	}
	// A job whose id exists: refused at once, at the next statement or at commit.
	if err := tx.InsertJob(groupJob(w.counters[0])); err != nil {
		return err
	}
	return nil
}

func testGroupCommitModel(t *testing.T, s storage.Store) {
	rec := &Recorder{}
	s.Listen(rec)
	w := &groupWorld{own: map[int][]string{}}
	err := s.WithTx(ctx, func(tx storage.Tx) error {
		for i := range groupWorkers * countersPer {
			id := fmt.Sprintf("job_counter%d", i)
			if err := tx.InsertJob(groupJob(id)); err != nil {
				return err
			}
			w.counters = append(w.counters, id)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("shared jobs: %v", err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	const workers, perWorker = groupWorkers, 30
	calls := make([]*groupCall, workers*perWorker)
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	began := time.Now()
	for wk := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perWorker {
				n := wk*perWorker + k
				c := newGroupCall(n, seed)
				calls[n] = c
				deletable := w.takeOwn(wk)
				errs[n] = s.WithTx(ctx, func(tx storage.Tx) error { return c.run(tx, w, wk, deletable) })
				w.settle(wk, c, errs[n] == nil, deletable)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d calls in %v", len(calls), time.Since(began))
	checkGroupOutcomes(t, calls, errs)
	checkGroupStore(t, ctx, s, w, calls, errs)
	checkGroupHeard(t, rec, calls, errs)
}

// takeOwn hands a worker one of its committed jobs to delete ("" when none).
func (w *groupWorld) takeOwn(worker int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	own := w.own[worker]
	if len(own) == 0 {
		return ""
	}
	return own[len(own)-1]
}

// settle records what a worker's call committed.
func (w *groupWorld) settle(worker int, c *groupCall, ok bool, deletable string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !ok {
		return
	}
	own := w.own[worker]
	if deletable != "" && contains(c.deleted, deletable) {
		own = own[:len(own)-1]
	}
	w.own[worker] = append(own, c.inserted...)
}

// checkGroupOutcomes: each call failed exactly when it was made to, the way it was made to.
func checkGroupOutcomes(t *testing.T, calls []*groupCall, errs []error) {
	t.Helper()
	for i, c := range calls {
		err := errs[i]
		switch c.fail {
		case failNone:
			if err != nil {
				t.Errorf("call %d (%v) should succeed: %v", i, c.steps, err)
			}
		case failAnswer:
			if errand.ErrorCode(err) != errand.ECONFLICT {
				t.Errorf("call %d: err %v, want its own conflict", i, err)
			}
		case failPlain:
			if !errors.Is(err, errPlain) {
				t.Errorf("call %d: err %v, want the injected error", i, err)
			}
		case failStatement:
			if err == nil || errand.ErrorCode(err) == errand.EUNAVAILABLE {
				t.Errorf("call %d wrote a duplicate job: err %v, want the database's refusal", i, err)
			}
		}
	}
}

// checkGroupStore compares the jobs and events in the store with the model.
func checkGroupStore(t *testing.T, ctx context.Context, s storage.Store, w *groupWorld, calls []*groupCall, errs []error) {
	t.Helper()
	want := map[string]bool{} // markers that must be stored (true) or must not (false)
	increments := make([]int, len(w.counters))
	alive := map[string]bool{}
	for i, c := range calls {
		ok := errs[i] == nil
		for _, m := range c.markers {
			want[m] = ok
		}
		for _, id := range c.inserted {
			if _, seen := alive[id]; !seen || ok {
				alive[id] = ok
			}
		}
		if ok {
			for _, n := range c.counters {
				increments[n]++
			}
		}
	}
	for i, c := range calls {
		if errs[i] == nil {
			for _, id := range c.deleted {
				alive[id] = false
			}
		}
	}
	for id, ok := range alive {
		_, err := s.GetJob(ctx, "g", id)
		if ok && err != nil {
			t.Errorf("job %s of a successful call: %v", id, err)
		}
		if !ok && !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("job %s of a failed call (or deleted): err %v, want not found", id, err)
		}
	}
	for n, id := range w.counters {
		j, err := s.GetJob(ctx, "g", id)
		if err != nil {
			t.Fatalf("counter %d: %v", n, err)
		}
		if j.Attempt != increments[n] {
			t.Errorf("counter %d = %d, want %d (successful increments)", n, j.Attempt, increments[n])
		}
	}
	got := map[string]int{}
	for id, ok := range alive {
		if ok {
			countMarkers(t, ctx, s, id, got)
		}
	}
	for _, id := range w.counters {
		countMarkers(t, ctx, s, id, got)
	}
	for m, n := range got {
		if n != 1 {
			t.Errorf("event %s stored %d times", m, n)
		}
		if ok, known := want[m]; !known || !ok {
			t.Errorf("event %s stored, but its call failed", m)
		}
	}
	for m, ok := range want {
		if ok && got[m] == 0 && !deletedStream(calls, errs, m) {
			var call, step int
			fmt.Sscanf(m, "c%d.s%d", &call, &step)
			t.Errorf("event %s of a successful call is missing (steps %v, inserted %v, deleted %v)", m, calls[call].steps, calls[call].inserted, calls[call].deleted)
		}
	}
}

// deletedStream reports whether marker m was on the stream of a job a
// successful call deleted (its events went with it).
func deletedStream(calls []*groupCall, errs []error, m string) bool {
	var call, step int
	if _, err := fmt.Sscanf(m, "c%d.s%d", &call, &step); err != nil {
		return false
	}
	c := calls[call]
	if c.steps[step] != stepInsert {
		return false
	}
	id := fmt.Sprintf("job_g%05d_%d", call, step)
	for i, o := range calls {
		if errs[i] == nil && contains(o.deleted, id) {
			return true
		}
	}
	return false
}

func countMarkers(t *testing.T, ctx context.Context, s storage.Store, stream string, got map[string]int) {
	t.Helper()
	var after int64
	for {
		evs, err := s.ListEvents(ctx, storage.ListEventsParams{Tenant: "g", Stream: stream, After: after, Limit: 500})
		if err != nil {
			t.Fatalf("events of %s: %v", stream, err)
		}
		for _, e := range evs {
			var d struct{ Marker string }
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatalf("event data %s: %v", e.Data, err)
			}
			got[d.Marker]++
			after = e.Seq
		}
		if len(evs) < 500 {
			return
		}
	}
}

// checkGroupHeard: the notifiers heard each committed event exactly once
// (and none of a failed call). An event whose job a later call deleted may be
// gone before its node's feed reads it (PostgreSQL's tailer reads the log):
// heard at most once.
func checkGroupHeard(t *testing.T, rec *Recorder, calls []*groupCall, errs []error) {
	t.Helper()
	must, may := map[string]bool{}, map[string]bool{}
	for i, c := range calls {
		for _, m := range c.markers {
			switch {
			case errs[i] != nil:
			case deletedStream(calls, errs, m):
				may[m] = true
			default:
				must[m] = true
			}
		}
	}
	seen := map[string]int{}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		clear(seen)
		for _, e := range rec.Events() {
			if e.Type != "test.step" {
				continue
			}
			var d struct{ Marker string }
			_ = json.Unmarshal(e.Data, &d)
			seen[d.Marker]++
		}
		heard := 0
		for m := range must {
			if seen[m] > 0 {
				heard++
			}
		}
		if heard == len(must) || time.Now().After(deadline) {
			break
		}
	}
	for m, n := range seen {
		switch {
		case n > 1:
			t.Errorf("event %s heard %d times", m, n)
		case !must[m] && !may[m]:
			t.Errorf("event %s heard, but its call failed", m)
		}
	}
	for m := range must {
		if seen[m] == 0 {
			t.Errorf("event %s committed but never heard", m)
		}
	}
}
