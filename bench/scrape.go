package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// ScrapeResult is how long GET /metrics takes on a busy server.
type ScrapeResult struct {
	Name        string `json:"name"`
	Operations  int    `json:"operations"`
	Connections int    `json:"connections"`
	Scrapes     int    `json:"scrapes"`
	Series      int    `json:"series"`
	// StreamsSeen is errand_stream_connections{transport="sse"} as scraped:
	// the open subscribers errand counts.
	StreamsSeen int     `json:"streams_seen"`
	Bytes       int     `json:"bytes"`
	GzipBytes   int     `json:"gzip_bytes"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	Maxms       float64 `json:"max_ms"`
}

// Scrape gives every operation of ops series with values (a job of each
// submitted, leased and completed), holds conns idle SSE subscribers of
// channel open, then scrapes p's /metrics scrapes times, one after another
// with a pause longer than the queue gauges' interval (so every scrape reads
// the store, the worst case), as Prometheus does (gzip accepted), and as
// plain text.
func Scrape(ctx context.Context, p *Process, ops []string, channel string, conns, scrapes int, pause time.Duration) ([]ScrapeResult, error) {
	if err := workEach(ctx, p.URL, ops); err != nil {
		return nil, err
	}
	open, err := connectMany(p.URL, "/v1/channels/"+channel+"/events", conns, 0)
	if err != nil {
		return nil, fmt.Errorf("open %d subscribers: %w", conns, err)
	}
	defer closeAll(open)
	time.Sleep(time.Second) // the streams are in place
	var out []ScrapeResult
	for _, gz := range []bool{true, false} {
		r, err := scrapeTimes(ctx, p.URL, gz, scrapes, pause)
		if err != nil {
			return nil, err
		}
		r.Operations, r.Connections = len(ops), conns
		out = append(out, r)
	}
	return out, nil
}

// workEach submits a job of each operation and has a worker lease and
// complete them all.
func workEach(ctx context.Context, base string, ops []string) error {
	hc := &http.Client{Timeout: 30 * time.Second}
	post := func(path string, body any, out any) error {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			msg, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, msg)
		}
		if out != nil {
			return json.NewDecoder(resp.Body).Decode(out)
		}
		return nil
	}
	for _, op := range ops {
		if err := post("/v1/jobs", map[string]any{"operation": op, "input": map[string]int{}}, nil); err != nil {
			return err
		}
	}
	for i := 0; i < len(ops); i += 100 {
		var leased struct {
			Leases []struct {
				ID string `json:"lease_id"`
			} `json:"leases"`
		}
		if err := post("/v1/leases", map[string]any{"operations": ops[i:min(i+100, len(ops))], "max_jobs": 100}, &leased); err != nil {
			return err
		}
		var cs []map[string]any
		for _, l := range leased.Leases {
			cs = append(cs, map[string]any{"lease_id": l.ID, "result": true})
		}
		if len(cs) > 0 {
			if err := post("/v1/leases/complete", map[string]any{"completions": cs, "brief": true}, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// scrapeTimes scrapes n times and returns the latencies.
func scrapeTimes(ctx context.Context, base string, gz bool, n int, pause time.Duration) (ScrapeResult, error) {
	// A transport of its own: it neither asks for nor undoes gzip by itself.
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}
	r := ScrapeResult{Name: "GET /metrics, plain text", Scrapes: n}
	if gz {
		r.Name = "GET /metrics, gzip (as Prometheus asks)"
	}
	var ms []float64
	for range n {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return r, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil || resp.StatusCode != 200 {
			return r, fmt.Errorf("scrape: %d %v", resp.StatusCode, err)
		}
		ms = append(ms, float64(took.Microseconds())/1000)
		if gz {
			r.GzipBytes = len(body)
		} else {
			r.Bytes, r.Series, r.StreamsSeen = len(body), series(body), gauge(body, `errand_stream_connections{transport="sse"}`)
		}
		time.Sleep(pause)
	}
	slices.Sort(ms)
	r.P50ms, r.P99ms, r.Maxms = ms[len(ms)/2], ms[min(len(ms)-1, len(ms)*99/100)], ms[len(ms)-1]
	return r, nil
}

// gauge is the value of one series in an exposition (-1 when it has none).
func gauge(b []byte, name string) int {
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscanf(v, "%g", &f); err == nil {
				return int(f)
			}
		}
	}
	return -1
}

// series counts the samples in an exposition.
func series(b []byte) int {
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line != "" && line[0] != '#' {
			n++
		}
	}
	return n
}
