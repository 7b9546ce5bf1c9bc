package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// RaiseFileLimit lifts the process's open-file limit (each connection is a file
// on both ends): to 200,000 where it may (root), else to its hard limit.
func RaiseFileLimit() uint64 {
	want := syscall.Rlimit{Cur: 200_000, Max: 200_000}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
		return want.Cur
	}
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	return r.Cur
}

// sseConn is a minimal SSE client: one TCP connection, a hand-written GET, and a
// reader that counts frames (cheap, so the load generator does not drown the server).
type sseConn struct {
	c       net.Conn
	r       *bufio.Reader
	body    io.Reader // the response's body, de-chunked (r reads it raw)
	frames  atomic.Int64
	lastID  atomic.Int64
	dupes   atomic.Int64 // ids not greater than the one before: duplicates or disorder
	sample  bool         // parse the publish time out of each event (latency)
	latency []time.Duration
}

// dialSSE opens a stream of path on the server at base, resuming after lastID.
func dialSSE(base, path string, lastID int64) (*sseConn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\n"
	if lastID > 0 {
		req += "Last-Event-ID: " + strconv.FormatInt(lastID, 10) + "\r\n"
	}
	if _, err := c.Write([]byte(req + "\r\n")); err != nil {
		c.Close()
		return nil, err
	}
	s := &sseConn{c: c, r: bufio.NewReaderSize(c, 8<<10)}
	s.lastID.Store(lastID)
	resp, err := http.ReadResponse(s.r, nil)
	if err != nil || resp.StatusCode != 200 {
		c.Close()
		return nil, fmt.Errorf("subscribe: %v %v", err, resp)
	}
	s.body = resp.Body
	return s, nil
}

// read counts frames until the connection ends. The body is chunked; frames are
// found by their "id: " lines, which a chunk boundary cannot split in a way that
// matters here (bufio reads whole lines).
func (s *sseConn) read() {
	for {
		line, err := s.r.ReadSlice('\n')
		if err != nil {
			return
		}
		if id, ok := bytes.CutPrefix(line, []byte("id: ")); ok {
			n, _ := strconv.ParseInt(string(bytes.TrimSpace(id)), 10, 64)
			if n <= s.lastID.Load() {
				s.dupes.Add(1)
			}
			s.lastID.Store(n)
			s.frames.Add(1)
		}
		if s.sample && bytes.HasPrefix(line, []byte("data: ")) {
			var e struct {
				Data struct{ T int64 } `json:"data"`
			}
			if json.Unmarshal(line[6:], &e) == nil && e.Data.T > 0 {
				s.latency = append(s.latency, time.Since(time.Unix(0, e.Data.T)))
			}
		}
	}
}

// FanoutResult is one channel's events delivered to many SSE subscribers.
type FanoutResult struct {
	Name          string  `json:"name"`
	Subscribers   int     `json:"subscribers"`
	Events        int     `json:"events"`
	Deliveries    int64   `json:"deliveries"`
	Missing       int64   `json:"missing"`
	Seconds       float64 `json:"seconds"`
	DeliveriesSec float64 `json:"deliveries_per_second"`
	P50ms         float64 `json:"p50_ms"`
	P99ms         float64 `json:"p99_ms"`
}

// Fanout connects subs SSE subscribers to channel, publishes events (publishers
// at once) and measures deliveries a second and publish-to-receive latency (on a
// sample of 100 subscribers).
func Fanout(ctx context.Context, base, channel string, subs, events, publishers int) (FanoutResult, error) {
	conns, err := connectMany(base, "/v1/channels/"+channel+"/events", subs, 0)
	if err != nil {
		return FanoutResult{}, err
	}
	defer closeAll(conns)
	for i := 0; i < len(conns) && i < 100; i++ {
		conns[i].sample = true
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); c.read() }()
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := publish(ctx, base, channel, events, publishers); err != nil {
		return FanoutResult{}, err
	}
	want := int64(subs) * int64(events)
	deadline := time.Now().Add(2 * time.Minute)
	var got int64
	for time.Now().Before(deadline) {
		if got = total(conns); got >= want {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start).Seconds()
	closeAll(conns)
	wg.Wait()
	var lat []time.Duration
	for _, c := range conns {
		lat = append(lat, c.latency...)
	}
	r := FanoutResult{Name: fmt.Sprintf("fan-out to %d SSE subscribers", subs), Subscribers: subs, Events: events,
		Deliveries: got, Missing: want - got, Seconds: el, DeliveriesSec: float64(got) / el}
	r.P50ms, r.P99ms, _ = percentiles(lat)
	return r, nil
}

func connectMany(base, path string, n int, lastID int64) ([]*sseConn, error) {
	conns := make([]*sseConn, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialSSE(base, path, lastID)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		closeAll(conns)
		return nil, err
	default:
		return conns, nil
	}
}

func closeAll(conns []*sseConn) {
	for _, c := range conns {
		if c != nil {
			c.c.Close()
		}
	}
}

func total(conns []*sseConn) int64 {
	var n int64
	for _, c := range conns {
		n += c.frames.Load()
	}
	return n
}

// publish posts events to channel with publishers at once; each carries its
// publish time (data.t, Unix nanoseconds).
func publish(ctx context.Context, base, channel string, events, publishers int) error {
	hc := &http.Client{Transport: NewTransport(publishers)}
	var failed atomic.Int64
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < events; i += publishers {
				if !publishOne(ctx, hc, base, channel, i) {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d publishes failed", n)
	}
	return nil
}

// publishOne posts event i, stamped with the time (data.t, Unix nanoseconds),
// and reports whether it was accepted.
func publishOne(ctx context.Context, hc *http.Client, base, channel string, i int) bool {
	body := fmt.Sprintf(`{"type":"tick","data":{"n":%d,"t":%d}}`, i, time.Now().UnixNano())
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/channels/"+channel+"/events", strings.NewReader(body))
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusAccepted
}

// StormResult is a reconnect storm: every subscriber drops and comes back at once.
type StormResult struct {
	Name        string  `json:"name"`
	Subscribers int     `json:"subscribers"`
	Events      int     `json:"events"`
	Lost        int64   `json:"lost"`
	Duplicated  int64   `json:"duplicated"`
	ReconnectS  float64 `json:"reconnect_seconds"`
}

// Storm connects subs subscribers, publishes half the events, drops every
// connection, publishes the rest, and reconnects them all at once with
// Last-Event-ID: each must end with every event once.
func Storm(ctx context.Context, base, channel string, subs, events int) (StormResult, error) {
	path := "/v1/channels/" + channel + "/events"
	conns, err := connectMany(base, path, subs, 0)
	if err != nil {
		return StormResult{}, err
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); c.read() }()
	}
	if err := publish(ctx, base, channel, events/2, 8); err != nil {
		return StormResult{}, err
	}
	waitFor(conns, int64(events/2))
	closeAll(conns)
	wg.Wait()
	if err := publish(ctx, base, channel, events-events/2, 8); err != nil {
		return StormResult{}, err
	}
	start := time.Now()
	again := make([]*sseConn, subs)
	errs := make(chan error, subs)
	var dial sync.WaitGroup
	for i, old := range conns {
		dial.Add(1)
		go func() {
			defer dial.Done()
			c, err := dialSSE(base, path, old.lastID.Load())
			if err != nil {
				errs <- err
				return
			}
			c.frames.Store(old.frames.Load())
			c.dupes.Store(old.dupes.Load())
			again[i] = c
			c.read()
		}()
	}
	waitFor(again, int64(events))
	took := time.Since(start).Seconds()
	closeAll(again)
	dial.Wait()
	select {
	case err := <-errs:
		return StormResult{}, err
	default:
	}
	r := StormResult{Name: fmt.Sprintf("reconnect storm, %d SSE subscribers", subs), Subscribers: subs, Events: events, ReconnectS: took}
	for _, c := range again {
		r.Lost += max(int64(events)-c.frames.Load(), 0)
		r.Duplicated += c.dupes.Load() + max(c.frames.Load()-int64(events), 0)
	}
	return r, nil
}

func waitFor(conns []*sseConn, each int64) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		done := true
		for _, c := range conns {
			if c == nil || c.frames.Load() < each {
				done = false
				break
			}
		}
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WatchResult is many jobs, each followed by its own SSE subscriber.
type WatchResult struct {
	Name       string  `json:"name"`
	Jobs       int     `json:"jobs"`
	Finished   int     `json:"streams_finished"`
	Events     int64   `json:"events_received"`
	Seconds    float64 `json:"seconds"`
	JobsPerSec float64 `json:"jobs_per_second"`
}

// Watch submits n jobs of operation, opens one SSE stream per job, completes
// them all with a batched worker and times until every stream has seen its
// job's terminal event (three events each: created, started, succeeded).
func Watch(ctx context.Context, base, operation string, n int) (WatchResult, error) {
	ids := make([]string, n)
	hc := &http.Client{Transport: NewTransport(32)}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				resp, err := hc.Post(base+"/v1/jobs", "application/json", strings.NewReader(`{"operation":"`+operation+`"}`))
				if err != nil {
					failed.Add(1)
					continue
				}
				var j struct{ ID string }
				_ = json.NewDecoder(resp.Body).Decode(&j)
				resp.Body.Close()
				ids[i] = j.ID
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		return WatchResult{}, fmt.Errorf("%d submits failed", failed.Load())
	}
	conns := make([]*sseConn, n)
	sem := make(chan struct{}, 64)
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if c, err := dialSSE(base, "/v1/jobs/"+id+"/events", 0); err == nil {
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	var readers sync.WaitGroup
	for _, c := range conns {
		if c != nil {
			readers.Add(1)
			go func() { defer readers.Done(); c.read() }()
		}
	}
	start := time.Now()
	for done := 0; done < n && ctx.Err() == nil; {
		var out struct {
			Leases []struct {
				ID string `json:"lease_id"`
			} `json:"leases"`
		}
		resp, err := hc.Post(base+"/v1/leases", "application/json", strings.NewReader(`{"operations":["`+operation+`"],"max_jobs":500,"wait_seconds":1}`))
		if err != nil {
			return WatchResult{}, err
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		items := make([]map[string]any, len(out.Leases))
		for i, l := range out.Leases {
			items[i] = map[string]any{"lease_id": l.ID, "result": true}
		}
		b, _ := json.Marshal(map[string]any{"completions": items})
		if len(items) > 0 {
			resp, err = hc.Post(base+"/v1/leases/complete", "application/json", strings.NewReader(string(b)))
			if err != nil {
				return WatchResult{}, err
			}
			resp.Body.Close()
		}
		done += len(items)
	}
	readers.Wait() // each job stream ends after its terminal event
	r := WatchResult{Name: fmt.Sprintf("%d jobs, one SSE subscriber each", n), Jobs: n, Seconds: time.Since(start).Seconds()}
	for _, c := range conns {
		if c != nil && c.frames.Load() == 3 {
			r.Finished++
		}
		if c != nil {
			r.Events += c.frames.Load()
		}
	}
	r.JobsPerSec = float64(r.Finished) / r.Seconds
	return r, nil
}
