package bench

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/client"
)

// DrainResult is a run that submits jobs for a while and then times how long
// until every one of them has finished: the throughput of a handler errand runs
// itself (exec, http), where no outside worker counts completions.
type DrainResult struct {
	Name       string  `json:"name"`
	Submitted  int     `json:"submitted"`
	Succeeded  int     `json:"succeeded"`
	Seconds    float64 `json:"seconds"`
	JobsPerSec float64 `json:"jobs_per_second"`
	Workers    int     `json:"workers"`
	// Baseline is the same work done bare in the same run (fork/exec of `true`,
	// or calls to the target), per second, with as many at once as Workers.
	Baseline     float64 `json:"baseline_per_second"`
	BaselineName string  `json:"baseline"`
}

// ExecBaseline runs `true` with n at once for d and returns runs a second.
func ExecBaseline(n int, d time.Duration) float64 {
	return parallelRate(n, d, func() bool { return exec.Command("true").Run() == nil })
}

// HTTPBaseline POSTs to url with n at once for d and returns calls a second.
func HTTPBaseline(url string, n int, d time.Duration) float64 {
	hc := &http.Client{Transport: NewTransport(n)}
	defer hc.CloseIdleConnections()
	return parallelRate(n, d, func() bool {
		resp, err := hc.Post(url, "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func parallelRate(n int, d time.Duration, do func() bool) float64 {
	var ok atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < d {
				if do() {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds()
}

// Drain submits jobs of operation with producers clients for d, then waits until
// none is queued, scheduled or running (at most a minute more).
func Drain(ctx context.Context, name, url, operation string, producers, workers int, d time.Duration) (DrainResult, error) {
	start := time.Now()
	r := Run(ctx, Load{URL: url + "/v1/jobs", Body: []byte(`{"operation":"` + operation + `","input":{"n":1}}`),
		Concurrency: producers, Duration: d, WantStatus: http.StatusAccepted})
	c := client.New(url)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		busy := false
		for _, st := range []errand.Status{errand.StatusQueued, errand.StatusScheduled, errand.StatusRunning} {
			page, err := c.List(ctx, client.ListOptions{Operation: operation, Status: st, Limit: 1})
			if err != nil {
				return DrainResult{}, err
			}
			busy = busy || len(page.Jobs) > 0
		}
		if !busy {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	el := time.Since(start).Seconds()
	ok := 0
	for cursor := ""; ; {
		page, err := c.List(ctx, client.ListOptions{Operation: operation, Status: errand.StatusSucceeded, Limit: 1000, Cursor: cursor})
		if err != nil {
			return DrainResult{}, err
		}
		ok += len(page.Jobs)
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	submitted := r.Requests - r.Errors
	return DrainResult{Name: name, Submitted: submitted, Succeeded: ok, Seconds: el, JobsPerSec: float64(ok) / el, Workers: workers}, nil
}
