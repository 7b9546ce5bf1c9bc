package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
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
	SubmitBatch  int     `json:"submit_batch"`
	// PerJob: each worker leases one job a request and completes it with
	// POST /v1/leases/{id}/complete, as the Python, Node and curl workers do.
	PerJob bool `json:"per_job"`
	// WithLease: per-job workers send each completion in their next lease
	// request (POST /v1/leases with completions): one request a job.
	WithLease bool `json:"with_lease,omitempty"`
	// CompleteP50ms and CompleteP99ms are the latency of one completion
	// request (per-job mode).
	CompleteP50ms float64 `json:"complete_p50_ms,omitempty"`
	CompleteP99ms float64 `json:"complete_p99_ms,omitempty"`
	// BaselinePerSec is a trivial net/http 202 server's rate in the same run
	// (with --baseline), and JobsPerSec's ratio to it.
	BaselinePerSec float64 `json:"baseline_per_second,omitempty"`
	VsBaseline     float64 `json:"vs_baseline,omitempty"`
	// Tenants is how many tenants the jobs' inputs name (with --fairness);
	// FIFOPerSec is the same load's rate on an operation without fairness in
	// the same run, and VsFIFO JobsPerSec's ratio to it.
	Tenants    int     `json:"tenants,omitempty"`
	FIFOPerSec float64 `json:"fifo_per_second,omitempty"`
	VsFIFO     float64 `json:"vs_fifo,omitempty"`
}

// CycleParams shape a full-cycle run.
type CycleParams struct {
	Operation   string
	Producers   int // submitting clients, spread over the nodes
	Workers     int // worker loops
	Batch       int // jobs per lease and per completion call (batched mode)
	SubmitBatch int // jobs per submit request (above 1: POST /v1/job-batches)
	// PerJob makes each worker lease one job and complete it with its own request.
	PerJob bool
	// WithLease (with PerJob) sends each completion in the worker's next lease
	// request instead.
	WithLease bool
	Duration  time.Duration
	// Tenants, when positive, makes the jobs' inputs name that many tenants in
	// turn (input.tenant): submits go in batches of at least Tenants jobs.
	Tenants int
}

// Cycle runs producers submitting jobs of operation (one a request, or
// submitBatch a request to POST /v1/job-batches) while workers lease them in
// batches and complete them in batches, and counts completed jobs a second.
// Producers and workers are spread evenly over the nodes' urls.
func Cycle(ctx context.Context, urls []string, p CycleParams) CycleResult {
	operation, producers, workers, batch, submitBatch, d := p.Operation, p.Producers, p.Workers, p.Batch, p.SubmitBatch, p.Duration
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var submitted, completed atomic.Int64
	var wg sync.WaitGroup
	for i, url := range urls {
		one := `{"operation":"` + operation + `","input":{"n":1}}`
		load := Load{URL: url + "/v1/jobs", Body: []byte(one),
			Concurrency: max(1, producers/len(urls)+boolInt(i < producers%len(urls))), Duration: d, WantStatus: 202}
		if submitBatch > 1 {
			load.URL = url + "/v1/job-batches"
			load.Body = []byte(`{"jobs":[` + strings.TrimSuffix(strings.Repeat(one+",", submitBatch), ",") + `]}`)
		}
		if p.Tenants > 0 {
			submitBatch = max(submitBatch, p.Tenants)
			load.URL, load.Body = url+"/v1/job-batches", tenantBatch(operation, submitBatch, p.Tenants)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := Run(ctx, load)
			submitted.Add(int64(r.Requests-r.Errors) * int64(max(1, submitBatch)))
		}()
	}
	start := time.Now()
	lat := make([][]time.Duration, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(urls[w%len(urls)], client.WithHTTPClient(&http.Client{Transport: NewTransport(2)}))
			held := ""     // the lease a with-lease worker completes in its next request
			defer func() { // the last one, on its own (not counted: the run is over)
				if held != "" {
					_, _ = c.Do(context.Background(), "POST", "/v1/leases/"+held+"/complete", map[string]any{"result": json.RawMessage(`{"ok":true}`)}, nil, nil)
				}
			}()
			for ctx.Err() == nil {
				if p.PerJob && p.WithLease {
					completed.Add(int64(workWithLease(ctx, c, operation, &held, &lat[w])))
				} else if p.PerJob {
					completed.Add(int64(workOne(ctx, c, operation, &lat[w])))
				} else {
					completed.Add(int64(workOnce(ctx, c, operation, batch)))
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	r := CycleResult{Name: "full cycle", Submitted: submitted.Load(), Completed: completed.Load(), Seconds: el,
		JobsPerSec: float64(completed.Load()) / el, SubmitPerSec: float64(submitted.Load()) / el,
		Producers: producers, Workers: workers, Batch: batch, SubmitBatch: max(1, submitBatch), PerJob: p.PerJob,
		WithLease: p.PerJob && p.WithLease, Tenants: p.Tenants}
	if p.PerJob {
		r.Name, r.Batch = "full cycle, one complete per job", 1
		if r.WithLease {
			r.Name = "full cycle, each complete in the next lease"
		}
		r.CompleteP50ms, r.CompleteP99ms, _ = percentiles(slices.Concat(lat...))
	}
	return r
}

// workOne leases one job and completes it with its own request, as a worker in
// any language without the SDK does; it records the completion's latency.
func workOne(ctx context.Context, c *client.Client, operation string, lat *[]time.Duration) int {
	var out struct {
		Leases []struct {
			ID string `json:"lease_id"`
		} `json:"leases"`
	}
	_, err := c.Do(ctx, "POST", "/v1/leases", map[string]any{"operations": []string{operation}, "max_jobs": 1,
		"wait_seconds": 1, "lease_seconds": 60}, nil, &out)
	if err != nil || len(out.Leases) == 0 {
		return 0
	}
	start := time.Now()
	var done struct {
		Status string `json:"status"`
	}
	_, err = c.Do(context.WithoutCancel(ctx), "POST", "/v1/leases/"+out.Leases[0].ID+"/complete",
		map[string]any{"result": json.RawMessage(`{"ok":true}`)}, nil, &done)
	*lat = append(*lat, time.Since(start))
	if err != nil || done.Status != string(errand.StatusSucceeded) {
		return 0
	}
	return 1
}

// workWithLease leases one job, sending the one it leased before (held) as a
// completion in the same request, as a worker does with POST /v1/leases'
// completions; it records that request's latency and returns how many
// completions succeeded.
func workWithLease(ctx context.Context, c *client.Client, operation string, held *string, lat *[]time.Duration) int {
	body := map[string]any{"operations": []string{operation}, "max_jobs": 1, "wait_seconds": 1, "lease_seconds": 60}
	if *held != "" {
		body["completions"] = []map[string]any{{"lease_id": *held, "result": json.RawMessage(`{"ok":true}`)}}
	}
	var out struct {
		Leases []struct {
			ID string `json:"lease_id"`
		} `json:"leases"`
		Completed []struct {
			Status string `json:"status"`
		} `json:"completed"`
	}
	start := time.Now()
	_, err := c.Do(context.WithoutCancel(ctx), "POST", "/v1/leases", body, nil, &out)
	if *held != "" {
		*lat = append(*lat, time.Since(start))
	}
	if err != nil {
		return 0 // held is sent again: a completion that did commit answers lease_expired
	}
	*held = ""
	if len(out.Leases) > 0 {
		*held = out.Leases[0].ID
	}
	n := 0
	for _, d := range out.Completed {
		if d.Status == string(errand.StatusSucceeded) {
			n++
		}
	}
	return n
}

// workOnce leases a batch and completes it in one call; it returns how many
// completions the server acknowledged.
func workOnce(ctx context.Context, c *client.Client, operation string, batch int) int {
	// What a worker needs of a lease: its id and the job's input.
	var out struct {
		Leases []struct {
			ID  string `json:"lease_id"`
			Job struct {
				Input json.RawMessage `json:"input"`
			} `json:"job"`
		} `json:"leases"`
	}
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
			Status string `json:"status"`
		}
	}
	if _, err := c.Do(context.WithoutCancel(ctx), "POST", "/v1/leases/complete",
		map[string]any{"completions": items, "brief": true}, nil, &res); err != nil {
		return 0
	}
	n := 0
	for _, r := range res.Results {
		if r.Status == string(errand.StatusSucceeded) {
			n++
		}
	}
	return n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
