package bench

import (
	"context"
	"net/http"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/client"
)

// LatencyResult is submit-to-lease latency on an idle server.
type LatencyResult struct {
	Name    string  `json:"name"`
	Samples int     `json:"samples"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	Maxms   float64 `json:"max_ms"`
}

// Latency submits one job at a time to an otherwise idle server while one worker
// long-polls, and measures from just before the submit is sent until the worker's
// lease answer arrives.
func Latency(ctx context.Context, url, operation string, samples int) (LatencyResult, error) {
	sub := client.New(url, client.WithHTTPClient(&http.Client{Transport: NewTransport(1)}))
	wrk := client.New(url, client.WithHTTPClient(&http.Client{Transport: NewTransport(1)}))
	got := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			var out struct{ Leases []errand.Lease }
			_, err := wrk.Do(ctx, "POST", "/v1/leases", map[string]any{"operations": []string{operation},
				"max_jobs": 1, "wait_seconds": 30}, nil, &out)
			if err != nil || len(out.Leases) == 0 {
				continue
			}
			at := time.Now()
			wrk.Do(ctx, "POST", "/v1/leases/"+out.Leases[0].ID+"/complete", map[string]any{"result": 1}, nil, nil)
			got <- at
		}
	}()
	time.Sleep(100 * time.Millisecond) // let the worker start polling
	var lat []time.Duration
	for range samples {
		start := time.Now()
		if _, err := sub.Submit(ctx, operation, map[string]int{"n": 1}, nil); err != nil {
			return LatencyResult{}, err
		}
		select {
		case at := <-got:
			lat = append(lat, at.Sub(start))
		case <-time.After(10 * time.Second):
			return LatencyResult{}, context.DeadlineExceeded
		}
		time.Sleep(5 * time.Millisecond) // idle between jobs
	}
	r := LatencyResult{Name: "submit → worker has it (idle)", Samples: len(lat)}
	r.P50ms, r.P99ms, r.Maxms = percentiles(lat)
	return r, nil
}
