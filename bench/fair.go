package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand/client"
)

// Fairness figures (#15): the full cycle over many tenants with fairness as a
// ratio of plain FIFO, and how soon the unlucky tenant's job is leased when
// another tenant has flooded the queue.

// tenantBatch is a batch submit body of n jobs of operation whose inputs name
// tenants t0, t1, … in turn ({"n":1,"tenant":"t7"}): an operation with
// fairness: {key: "input:/tenant"} shares leases between them, one without
// ignores them.
func tenantBatch(operation string, n, tenants int) []byte {
	var b strings.Builder
	b.WriteString(`{"jobs":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"operation":%q,"input":{"n":1,"tenant":"t%d"}}`, operation, i%tenants)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// Unlucky fills operation (fairness keyed on input:/tenant) with flood jobs
// of one tenant, then, samples times, submits one job of another and leases
// one job at a time (completing each) until that job comes: the time from its
// submit to its lease.
func Unlucky(ctx context.Context, url, operation string, flood int64, samples int) (LatencyResult, error) {
	r := LatencyResult{Name: "unlucky tenant's lease under a " + strconv.FormatInt(flood, 10) + "-job flood", Samples: samples}
	if err := fill(ctx, url, operation, flood); err != nil {
		return r, err
	}
	c := client.New(url, client.WithHTTPClient(&http.Client{Transport: NewTransport(2)}))
	var lat []time.Duration
	for i := range samples {
		var sub struct{ ID string }
		start := time.Now()
		if _, err := c.Do(ctx, "POST", "/v1/jobs", map[string]any{"operation": operation,
			"input": map[string]any{"tenant": "unlucky", "i": i}}, nil, &sub); err != nil {
			return r, fmt.Errorf("submit: %w", err)
		}
		for n := 0; ; n++ {
			id, err := leaseComplete(ctx, c, operation)
			if err != nil {
				return r, err
			}
			if id == sub.ID {
				lat = append(lat, time.Since(start))
				break
			}
			if n > 1000 {
				return r, fmt.Errorf("the unlucky job %s was not leased in 1000 leases", sub.ID)
			}
		}
	}
	r.P50ms, r.P99ms, r.Maxms = percentiles(lat)
	return r, nil
}

// leaseComplete leases one job of operation and completes it; it returns the
// job's id ("" when none came).
func leaseComplete(ctx context.Context, c *client.Client, operation string) (string, error) {
	var out struct {
		Leases []struct {
			ID  string              `json:"lease_id"`
			Job struct{ ID string } `json:"job"`
		} `json:"leases"`
	}
	if _, err := c.Do(ctx, "POST", "/v1/leases", map[string]any{"operations": []string{operation}, "max_jobs": 1,
		"wait_seconds": 1}, nil, &out); err != nil {
		return "", fmt.Errorf("lease: %w", err)
	}
	if len(out.Leases) == 0 {
		return "", nil
	}
	l := out.Leases[0]
	if _, err := c.Do(ctx, "POST", "/v1/leases/"+l.ID+"/complete", map[string]any{"result": true}, nil, nil); err != nil {
		return "", fmt.Errorf("complete: %w", err)
	}
	return l.Job.ID, nil
}
