// Package bench measures errand over loopback HTTP: submit throughput and
// latency, the full job cycle with batched pull workers, and submit-to-lease
// latency. Every run reports the machine's fsync rate beside its figures, and the
// submit benchmark a trivial net/http baseline measured in the same run.
package bench

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

// Result is one load run.
type Result struct {
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"per_second"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	Maxms       float64 `json:"max_ms"`
	// TargetRate is the open-loop rate asked for (0 for as fast as possible).
	TargetRate float64 `json:"target_rate,omitempty"`
}

// Load describes a run of identical requests.
type Load struct {
	Name string
	// Method is the requests' method. Defaults to POST.
	Method      string
	URL         string // full URL
	Body        []byte
	Header      http.Header
	Concurrency int
	Duration    time.Duration
	// Rate, when > 0, sends at this many requests a second in all (open loop:
	// latency counts from when a request was due, so a stall is not hidden).
	Rate float64
	// WantStatus is the expected status; others count as errors.
	WantStatus int
}

// NewTransport returns a keep-alive transport sized for n concurrent requests.
func NewTransport(n int) *http.Transport {
	return &http.Transport{MaxIdleConns: n * 2, MaxIdleConnsPerHost: n * 2, MaxConnsPerHost: n * 2,
		IdleConnTimeout: time.Minute, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext}
}

// Run sends the load and measures it.
func Run(ctx context.Context, l Load) Result {
	hc := &http.Client{Transport: NewTransport(l.Concurrency), Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	lat := make([][]time.Duration, l.Concurrency)
	errs := make([]int, l.Concurrency)
	start := time.Now()
	end := start.Add(l.Duration)
	var wg sync.WaitGroup
	for g := range l.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var interval time.Duration
			next := start
			if l.Rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(l.Concurrency) / l.Rate)
				next = start.Add(interval * time.Duration(g) / time.Duration(l.Concurrency))
			}
			for ctx.Err() == nil {
				due := time.Now()
				if interval > 0 {
					due = next
					next = next.Add(interval)
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				}
				if due.After(end) {
					return
				}
				if !send(ctx, hc, &l) {
					errs[g]++
				}
				lat[g] = append(lat[g], time.Since(due))
			}
		}()
	}
	wg.Wait()
	return summarize(l.Name, l.Concurrency, lat, errs, time.Since(start), l.Rate)
}

func send(ctx context.Context, hc *http.Client, l *Load) bool {
	req, _ := http.NewRequestWithContext(ctx, cmp.Or(l.Method, http.MethodPost), l.URL, bytes.NewReader(l.Body))
	req.Header = l.Header.Clone()
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == l.WantStatus
}

func summarize(name string, conc int, lat [][]time.Duration, errs []int, elapsed time.Duration, rate float64) Result {
	var all []time.Duration
	nerr := 0
	for i := range lat {
		all = append(all, lat[i]...)
		nerr += errs[i]
	}
	r := Result{Name: name, Concurrency: conc, Requests: len(all), Errors: nerr, Seconds: elapsed.Seconds(), TargetRate: rate}
	r.PerSecond = float64(len(all)-nerr) / elapsed.Seconds()
	r.P50ms, r.P99ms, r.Maxms = percentiles(all)
	return r
}

// percentiles returns p50, p99 and max in milliseconds.
func percentiles(d []time.Duration) (p50, p99, mx float64) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	return ms(d[len(d)/2]), ms(d[min(len(d)-1, len(d)*99/100)]), ms(d[len(d)-1])
}

// Baseline serves a trivial 202 with net/http on loopback and loads it like
// submit, so errand's figures can be read as a ratio of what this machine does.
func Baseline(ctx context.Context, l Load) (Result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	body := []byte(`{"id":"job_01M81FYDCTE1X91SVCMDMS18K4","status":"queued"}`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(body)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	l.URL, l.WantStatus, l.Name = "http://"+ln.Addr().String()+"/v1/jobs", http.StatusAccepted, "baseline: net/http trivial 202"
	return Run(ctx, l), nil
}

// FsyncRate measures how many small write+fsync pairs a second dir's disk does.
func FsyncRate(dir string) (float64, error) {
	f, err := os.CreateTemp(dir, "fsync-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	n := 0
	start := time.Now()
	for time.Since(start) < time.Second {
		if _, err := f.WriteAt(buf, int64(n%16)*4096); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// TempDir is a directory on the data disk for benchmark files.
func TempDir(base string) (string, error) {
	if err := os.MkdirAll(base, 0o750); err != nil {
		return "", err
	}
	return os.MkdirTemp(base, "bench-")
}
