package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/client"
)

// crashLease is how long rawWorker's leases last (seconds): longer than a
// restart of the killed server takes on a loaded CI machine, so the jobs that
// were running at the kill are still running when the test looks.
const crashLease = 10

// rawWorker leases and completes in batches over plain HTTP, working hold on each
// batch, and records every job whose completion the server acknowledged.
func rawWorker(ctx context.Context, url string, hold time.Duration, acked *sync.Map) {
	c := client.New(url)
	for ctx.Err() == nil {
		var out struct{ Leases []errand.Lease }
		_, err := c.Do(ctx, "POST", "/v1/leases", map[string]any{"operations": []string{"echo"}, "max_jobs": 50,
			"wait_seconds": 1, "lease_seconds": crashLease, "worker": "raw"}, nil, &out)
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if len(out.Leases) == 0 {
			continue
		}
		time.Sleep(hold)
		var items []map[string]any
		for _, l := range out.Leases {
			items = append(items, map[string]any{"lease_id": l.ID, "result": map[string]string{"by": "raw"}})
		}
		var res struct {
			Results []struct {
				Job   *errand.Job     `json:"job"`
				Error *errand.Problem `json:"error"`
			}
		}
		if _, err := c.Do(context.WithoutCancel(ctx), "POST", "/v1/leases/complete", map[string]any{"completions": items}, nil, &res); err != nil {
			continue
		}
		for _, r := range res.Results {
			if r.Job != nil {
				acked.Store(r.Job.ID, true)
			}
		}
	}
}

// TestE2EKillServer kills errand with SIGKILL while 20 clients submit and workers
// complete, restarts it on the same data and checks that nothing acknowledged is
// lost and nothing stays stuck.
func TestE2EKillServer(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	ctx, stop := context.WithCancel(context.Background())
	var accepted, completed sync.Map
	var nAccepted atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(s.URL)
			for i := 0; ctx.Err() == nil; i++ {
				j, err := c.Submit(ctx, "echo", map[string]int{"i": i}, nil)
				if err != nil {
					return // the server is gone
				}
				accepted.Store(j.ID, true)
				nAccepted.Add(1)
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); rawWorker(ctx, s.URL, 200*time.Millisecond, &completed) }()
	}
	// Kill once 2,000 submits were accepted and some completions acknowledged:
	// on a fast machine the submits are in before the first completion is.
	for deadline := time.Now().Add(30 * time.Second); nAccepted.Load() < 2000 || count(&completed) < 10; {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d submits accepted, %d completions acknowledged", nAccepted.Load(), count(&completed))
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.kill()
	stop()
	wg.Wait()

	s.start() // same data directory
	c := s.client()
	// First, before their leases (crashLease) can expire: the jobs that were running.
	page, _ := c.List(context.Background(), client.ListOptions{Status: errand.StatusRunning, Limit: 1000})
	running := page.Jobs
	lost, notDone := 0, 0
	accepted.Range(func(k, _ any) bool {
		if _, err := c.Get(context.Background(), k.(string)); err != nil {
			lost++
		}
		return true
	})
	completed.Range(func(k, _ any) bool {
		if j, err := c.Get(context.Background(), k.(string)); err != nil || j.Status != errand.StatusSucceeded {
			notDone++
		}
		return true
	})
	nCompleted := 0
	completed.Range(func(any, any) bool { nCompleted++; return true })
	t.Logf("accepted %d, acknowledged complete %d before the kill", nAccepted.Load(), nCompleted)
	if lost > 0 || notDone > 0 || nCompleted == 0 {
		t.Fatalf("after kill -9: %d accepted jobs lost, %d acknowledged completions lost (of %d)", lost, notDone, nCompleted)
	}
	// Jobs that were running when errand died come back after their lease.
	if len(running) == 0 {
		t.Fatalf("no job was running at the kill: the test did not exercise lease recovery")
	}
	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	go rawWorker(ctx2, s.URL, 0, &completed)
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := 0
		accepted.Range(func(k, _ any) bool {
			if j, err := c.Get(context.Background(), k.(string)); err != nil || j.Status != errand.StatusSucceeded {
				left++
			}
			return true
		})
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d accepted jobs still not succeeded 30s after restart", left)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, j := range running {
		got, _ := c.Get(context.Background(), j.ID)
		if got.Attempt < 2 || got.Status != errand.StatusSucceeded {
			t.Fatalf("job %s was running at the kill: now %s at attempt %d, want succeeded on a later attempt", j.ID, got.Status, got.Attempt)
		}
	}
	t.Logf("%d jobs were running at the kill; all were retried after their leases expired", len(running))
}

// TestE2EKillWorker kills a worker process mid-job: the job is leased again
// after its lease expires and succeeds.
func TestE2EKillWorker(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	j, err := s.client().Submit(context.Background(), "echo", map[string]string{"hello": "world"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := exec.Command(os.Args[0], "-test.run=^TestHelperHangingWorker$")
	w.Env = append(os.Environ(), "ERRAND_HELPER_URL="+s.URL)
	var helperOut bytes.Buffer
	w.Stdout, w.Stderr = &helperOut, &helperOut
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- w.Wait() }()
	// Wait until the helper holds the job.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _ := s.client().Get(context.Background(), j.ID)
		if got.Status == errand.StatusRunning {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the worker exited (%v) without holding the job:\n%s", err, helperOut.String())
		default:
		}
		if time.Now().After(deadline) {
			w.Process.Kill()
			<-exited
			t.Fatalf("the worker never leased the job in 30s:\n%s", helperOut.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	w.Process.Signal(syscall.SIGKILL)
	<-exited
	killed := time.Now()
	var done sync.Map
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go rawWorker(ctx, s.URL, 0, &done)
	got, err := s.client().Wait(ctxTimeout(t, 15*time.Second), j.ID, 10*time.Second)
	if err != nil || got.Status != errand.StatusSucceeded || got.Attempt != 2 {
		t.Fatalf("after the worker died: %+v, %v; want succeeded at attempt 2", got, err)
	}
	if d := time.Since(killed); d < time.Second {
		t.Fatalf("re-leased %v after the kill, before the 2s lease could expire", d)
	}
	evs, _ := s.client().Events(context.Background(), j.ID, "")
	var retry client.Event
	for _, e := range evs.Events {
		if e.Type == errand.EventJobRetrying {
			retry = e
		}
	}
	var data struct{ Error errand.Problem }
	json.Unmarshal(retry.Data, &data)
	if data.Error.Code != errand.ECODELEASEEXPIRED {
		t.Fatalf("job.retrying event = %s, want one with error code lease_expired", retry.Data)
	}
}

// TestHelperHangingWorker is run as a separate process by TestE2EKillWorker: it
// leases one job with a 2s lease and never finishes it.
func TestHelperHangingWorker(t *testing.T) {
	url := os.Getenv("ERRAND_HELPER_URL")
	if url == "" {
		t.Skip("helper process for TestE2EKillWorker")
	}
	c := client.New(url)
	var out struct{ Leases []errand.Lease }
	_, err := c.Do(context.Background(), "POST", "/v1/leases", map[string]any{"operations": []string{"echo"},
		"wait_seconds": 10, "lease_seconds": 2}, nil, &out)
	if err != nil || len(out.Leases) != 1 {
		fmt.Fprintln(os.Stderr, "helper lease:", err)
		os.Exit(1)
	}
	select {} // hold the job until killed
}

// count is how many entries m holds.
func count(m *sync.Map) int {
	n := 0
	m.Range(func(any, any) bool { n++; return true })
	return n
}
