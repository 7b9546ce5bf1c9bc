package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/client"
)

// CycleResult is a full-cycle run: submits and batched worker completions.
type CycleResult struct {
	Name         string  `json:"name"`
	Submitted    int64   `json:"submitted"`
	Completed    int64   `json:"completed"`
	Seconds      float64 `json:"seconds"`
	JobsPerSec   float64 `json:"jobs_per_second"`
	SubmitPerSec float64 `json:"submits_per_second"`
	Producers    int     `json:"producers"`
	Workers      int     `json:"workers"`
	Batch        int     `json:"batch"`
}

// Cycle runs producers submitting jobs of operation while workers lease them in
// batches and complete them in batches, and counts completed jobs a second.
func Cycle(ctx context.Context, url, operation string, producers, workers, batch int, d time.Duration) CycleResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var submitted, completed atomic.Int64
	var wg sync.WaitGroup
	load := Load{URL: url + "/v1/jobs", Body: []byte(`{"operation":"` + operation + `","input":{"n":1}}`),
		Concurrency: producers, Duration: d, WantStatus: 202}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := Run(ctx, load)
		submitted.Store(int64(r.Requests - r.Errors))
	}()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(url, client.WithHTTPClient(&http.Client{Transport: NewTransport(2)}))
			for ctx.Err() == nil {
				completed.Add(int64(workOnce(ctx, c, operation, batch)))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	return CycleResult{Name: "full cycle", Submitted: submitted.Load(), Completed: completed.Load(), Seconds: el,
		JobsPerSec: float64(completed.Load()) / el, SubmitPerSec: float64(submitted.Load()) / el,
		Producers: producers, Workers: workers, Batch: batch}
}

// workOnce leases a batch and completes it in one call; it returns how many
// completions the server acknowledged.
func workOnce(ctx context.Context, c *client.Client, operation string, batch int) int {
	var out struct{ Leases []errand.Lease }
	_, err := c.Do(ctx, "POST", "/v1/leases", map[string]any{"operations": []string{operation}, "max_jobs": batch,
		"wait_seconds": 1, "lease_seconds": 60}, nil, &out)
	if err != nil || len(out.Leases) == 0 {
		return 0
	}
	items := make([]map[string]any, len(out.Leases))
	for i, l := range out.Leases {
		items[i] = map[string]any{"lease_id": l.ID, "result": json.RawMessage(`{"ok":true}`)}
	}
	var res struct {
		Results []struct {
			Job *struct{} `json:"job"`
		}
	}
	if _, err := c.Do(context.WithoutCancel(ctx), "POST", "/v1/leases/complete", map[string]any{"completions": items}, nil, &res); err != nil {
		return 0
	}
	n := 0
	for _, r := range res.Results {
		if r.Job != nil {
			n++
		}
	}
	return n
}
