package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PageResult is how long the dashboard takes to answer one page.
type PageResult struct {
	Name    string  `json:"name"`
	Path    string  `json:"path"`
	Samples int     `json:"samples"`
	Bytes   int     `json:"bytes"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	Maxms   float64 `json:"max_ms"`
}

// UIPages GETs each page samples times, one at a time over one keep-alive
// connection (loopback: the time is the server's, plus well under a
// millisecond), and reports the percentiles. The server runs in development
// mode, so no sign-in is needed.
func UIPages(ctx context.Context, base string, pages map[string]string, samples int) ([]PageResult, error) {
	return UIPagesWith(ctx, base, pages, samples, 3)
}

// UIPagesWith is UIPages with warm requests not timed first (0: the first
// request is timed, as a page's first view after a start).
func UIPagesWith(ctx context.Context, base string, pages map[string]string, samples, warm int) ([]PageResult, error) {
	hc := &http.Client{Transport: NewTransport(1), Timeout: time.Minute}
	var out []PageResult
	for name, path := range pages {
		r := PageResult{Name: name, Path: path, Samples: samples}
		lat := make([]time.Duration, 0, samples)
		for i := range samples + warm {
			start := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
			resp, err := hc.Do(req)
			if err != nil {
				return out, err
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				return out, fmt.Errorf("GET %s: %d %v", path, resp.StatusCode, err)
			}
			if i >= warm {
				lat = append(lat, time.Since(start))
			}
			r.Bytes = len(b)
		}
		r.P50ms, r.P99ms, r.Maxms = percentiles(lat)
		out = append(out, r)
	}
	return out, nil
}

// Fill submits n jobs of operation to the server at url in batches of 1,000.
func Fill(ctx context.Context, url, operation string, n int64) error {
	return fill(ctx, url, operation, n)
}

// WatchersResult is what n open dashboards cost the server.
type WatchersResult struct {
	Name       string `json:"name"`
	Watchers   int    `json:"watchers"`
	RSSBefore  int64  `json:"rss_before_bytes"`
	RSSAfter   int64  `json:"rss_after_bytes"`
	RSSDelta   int64  `json:"rss_delta_bytes"`
	PerWatcher int64  `json:"bytes_per_watcher"`
	// GoDelta is the growth of the Go runtime's heap in use plus goroutine
	// stacks in use (from GET /metrics), which RSS blurs with pages the
	// runtime keeps or the kernel lends.
	GoDelta     int64 `json:"go_heap_and_stack_delta_bytes"`
	Goroutines  int64 `json:"goroutines_delta"`
	GotUpdate   int   `json:"watchers_that_saw_a_new_job"`
	UpdateMaxms int64 `json:"update_max_ms"`
}

// goMemory reads the Go heap and stacks in use, and the goroutines, from
// the server's /metrics (open in development mode).
func goMemory(base string) (mem, goroutines int64, err error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		var f float64
		if _, err := fmt.Sscanf(v, "%g", &f); err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes":
			mem += int64(f)
		case "go_goroutines":
			goroutines = int64(f)
		}
	}
	return mem, goroutines, nil
}

// UIWatchers opens n live job lists (/ui/jobs/live, as n browsers on the
// jobs page hold open), measures how much p's RSS grew, then submits one job
// of operation and counts the lists that showed it.
func UIWatchers(ctx context.Context, p *Process, operation string, n int) (WatchersResult, error) {
	r := WatchersResult{Name: "open dashboards watching the jobs list", Watchers: n}
	time.Sleep(time.Second)
	var err error
	if r.RSSBefore, err = p.RSS(); err != nil {
		return r, err
	}
	memBefore, gBefore, err := goMemory(p.URL)
	if err != nil {
		return r, err
	}
	conns := make([]*uiStream, n)
	for i := range conns {
		if conns[i], err = dialUI(p.URL, "/ui/jobs/live"); err != nil {
			return r, err
		}
		defer conns[i].c.Close()
	}
	time.Sleep(3 * time.Second)
	if r.RSSAfter, err = p.RSS(); err != nil {
		return r, err
	}
	memAfter, gAfter, err := goMemory(p.URL)
	if err != nil {
		return r, err
	}
	r.GoDelta, r.Goroutines = memAfter-memBefore, gAfter-gBefore
	r.RSSDelta = r.RSSAfter - r.RSSBefore
	r.PerWatcher = r.RSSDelta / int64(n)
	start := time.Now()
	resp, err := http.Post(p.URL+"/v1/jobs", "application/json", strings.NewReader(`{"operation":"`+operation+`","input":{}}`))
	if err != nil {
		return r, err
	}
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got := 0
		for _, c := range conns {
			if c.rows.Load() > 0 {
				got++
			}
		}
		r.GotUpdate = got
		if got == n {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.UpdateMaxms = time.Since(start).Milliseconds()
	return r, nil
}

// uiStream is one live page's stream, counting the rows it receives.
type uiStream struct {
	c    net.Conn
	rows atomic.Int64
}

func dialUI(base, path string) (*uiStream, error) {
	sse, err := dialSSE(base, path, 0)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	c := sse.c
	s := &uiStream{c: c}
	var once sync.Once
	go func() {
		defer once.Do(func() { c.Close() })
		sc := bufio.NewScanner(sse.body)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			if bytes.Equal(sc.Bytes(), []byte("event: row")) {
				s.rows.Add(1)
			}
		}
	}()
	return s, nil
}
