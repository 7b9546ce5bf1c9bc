package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// QueuedResult is a deep queue: how fast it filled, how long errand takes to
// start over it, what it holds in memory, and how quickly a worker leases from it.
type QueuedResult struct {
	Name          string  `json:"name"`
	Jobs          int64   `json:"jobs"`
	FillSeconds   float64 `json:"fill_seconds"`
	FillPerSec    float64 `json:"fill_jobs_per_second"`
	StartSeconds  float64 `json:"start_seconds"`  // process start until /readyz answers 200
	RSSIdle       int64   `json:"rss_idle_bytes"` // after start, before any lease
	RSSAfterLease int64   `json:"rss_after_leases_bytes"`
	Leases        int     `json:"leases"`
	LeaseP50ms    float64 `json:"lease_p50_ms"`
	LeaseP99ms    float64 `json:"lease_p99_ms"`
}

// Queued fills a store with n queued jobs of operation through start's server
// (bulk submits, 1,000 a request), restarts it (start is called again over
// the same data), times how long it takes to be ready, reads its RSS, and
// leases `leases` jobs one at a time, completing each.
func Queued(ctx context.Context, start func() (*Process, error), operation string, n int64, leases int) (QueuedResult, error) {
	r := QueuedResult{Name: "deep queue", Jobs: n, Leases: leases}
	p, err := start()
	if err != nil {
		return r, err
	}
	began := time.Now()
	if err := fill(ctx, p.URL, operation, n); err != nil {
		p.Stop()
		return r, err
	}
	r.FillSeconds = time.Since(began).Seconds()
	r.FillPerSec = float64(n) / r.FillSeconds
	p.Stop()

	began = time.Now()
	if p, err = start(); err != nil {
		return r, err
	}
	defer p.Stop()
	if err := waitReady(ctx, p.URL); err != nil {
		return r, err
	}
	r.StartSeconds = time.Since(began).Seconds()
	time.Sleep(time.Second)
	if r.RSSIdle, err = p.RSS(); err != nil {
		return r, err
	}
	lat, err := leaseEach(ctx, p.URL, operation, leases)
	if err != nil {
		return r, err
	}
	r.LeaseP50ms, r.LeaseP99ms, _ = percentiles(lat)
	r.RSSAfterLease, err = p.RSS()
	return r, err
}

// fill submits n jobs in batches of 1,000 from 4 clients.
func fill(ctx context.Context, url, operation string, n int64) error {
	one := `{"operation":"` + operation + `","input":{"n":1}}`
	body := []byte(`{"jobs":[` + strings.TrimSuffix(strings.Repeat(one+",", 1000), ",") + `]}`)
	hc := &http.Client{Transport: NewTransport(4), Timeout: time.Minute}
	var left atomic.Int64
	left.Store((n + 999) / 1000)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				resp, err := hc.Post(url+"/v1/job-batches", "application/json", bytes.NewReader(body))
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						err = fmt.Errorf("bulk submit: %s", resp.Status)
					}
				}
				if err != nil {
					errs[c] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

func waitReady(ctx context.Context, url string) error {
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return fmt.Errorf("%s not ready after 5 minutes", url)
}

// leaseEach leases one job at a time and completes it, timing each lease.
func leaseEach(ctx context.Context, url, operation string, n int) ([]time.Duration, error) {
	hc := &http.Client{Transport: NewTransport(1), Timeout: time.Minute}
	req := []byte(`{"operations":["` + operation + `"],"max_jobs":1,"lease_seconds":60}`)
	lat := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		resp, err := hc.Post(url+"/v1/leases", "application/json", bytes.NewReader(req))
		if err != nil {
			return nil, err
		}
		var out struct {
			Leases []struct {
				ID string `json:"lease_id"`
			} `json:"leases"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		lat = append(lat, time.Since(t))
		if err != nil || len(out.Leases) != 1 {
			return nil, fmt.Errorf("lease at depth: %v (%d leases)", err, len(out.Leases))
		}
		c, err := hc.Post(url+"/v1/leases/"+out.Leases[0].ID+"/complete", "application/json", strings.NewReader(`{"result":{}}`))
		if err != nil {
			return nil, err
		}
		c.Body.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return lat, nil
}
