package runner_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/servicetest"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/runner"
	"github.com/errandhq/errand/worker"
)

// beatLog is the in-process transport with a record of when each lease was
// heartbeaten and completed.
type beatLog struct {
	*runner.Transport
	mu        sync.Mutex
	beats     map[string][]time.Time
	completed map[string]time.Time
}

func (b *beatLog) Heartbeat(ctx context.Context, id string, s float64, p *errand.Progress) (bool, error) {
	b.mu.Lock()
	b.beats[id] = append(b.beats[id], time.Now())
	b.mu.Unlock()
	return b.Transport.Heartbeat(ctx, id, s, p)
}

func (b *beatLog) Complete(ctx context.Context, cs []worker.Completion) error {
	b.mu.Lock()
	for _, c := range cs {
		b.completed[c.LeaseID] = time.Now()
	}
	b.mu.Unlock()
	return b.Transport.Complete(ctx, cs)
}

// TestHeartbeats: a worker's one heartbeat loop beats a long job about every
// Heartbeat, never a job shorter than that, and never a job after its run
// ended; every job completes.
func TestHeartbeats(t *testing.T) {
	h := servicetest.New(t, teststore.Open(t), servicetest.Op("work"))
	tr := &beatLog{Transport: &runner.Transport{Q: h.Queue}, beats: map[string][]time.Time{}, completed: map[string]time.Time{}}
	const every = 50 * time.Millisecond
	w, err := worker.New(worker.Config{Transport: tr, Operations: []string{"work"}, Concurrency: 4,
		Lease: time.Minute, Heartbeat: every, PollWait: 100 * time.Millisecond},
		func(ctx context.Context, j *worker.Job) (any, error) {
			if string(j.Input) == `{"slow":true}` {
				time.Sleep(8 * every)
			}
			return map[string]bool{"ok": true}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	slow := h.Submit("work", job.SubmitParams{Input: servicetest.Input(`{"slow":true}`)})
	for range 40 {
		h.Submit("work", job.SubmitParams{Input: servicetest.Input(`{}`)})
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for h.Get(slow.ID).Status != errand.StatusSucceeded && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * every) // a heartbeat after the end would come now
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.completed) != 41 {
		t.Fatalf("%d jobs completed, want 41", len(tr.completed))
	}
	slowBeats := 0
	for lease, beats := range tr.beats {
		end, ok := tr.completed[lease]
		if !ok {
			t.Errorf("lease %s beaten but never completed", lease)
		}
		for _, at := range beats {
			if at.After(end) {
				t.Errorf("lease %s beaten %v after its completion", lease, at.Sub(end))
			}
		}
		slowBeats = max(slowBeats, len(beats))
	}
	// The slow job ran 8 heartbeats' time: beaten every 50–63 ms, so 5 to 8 times (3 on a machine that stalls).
	if len(tr.beats) != 1 || slowBeats < 3 || slowBeats > 8 {
		t.Errorf("heartbeats by lease: %d leases beaten, the slow job %d times; want only it, 3 to 8 times", len(tr.beats), slowBeats)
	}
}
