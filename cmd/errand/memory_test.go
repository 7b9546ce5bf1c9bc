package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"
)

// memoryConfig serves the memory workloads: bodies of 1 MB jobs, channels with
// an hour of history.
const memoryConfig = `
listen: "127.0.0.1:0"
log: { level: info }
http: { max_body_bytes: 2097152 }
operations:
  echo: {}
channels:
  "big.*": { history: 1h }
`

// memoryCap is the most resident memory a workload may take the server to.
const memoryCap = 300 << 20

// memoryWatch measures one workload on s: it resets the process's peak RSS
// (VmHWM) to its current RSS, and kills the server when RSS passes four times
// the cap (a blow-up need not eat the machine to fail the test). done returns
// the peak.
func memoryWatch(t *testing.T, s *server) (done func() int64) {
	pid := s.cmd.Process.Pid
	// "5" resets the peak to the current RSS (Linux 4.0+); without it the
	// peak includes what came before, which only makes the check stricter.
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				return
			}
			if rss := statusField(b, "VmRSS"); rss > 4*memoryCap {
				t.Errorf("server RSS reached %d MB: killed", rss>>20)
				_ = s.cmd.Process.Signal(syscall.SIGKILL)
				return
			}
		}
	}()
	return func() int64 {
		close(stop)
		wg.Wait()
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatalf("the server is gone: %v", err)
		}
		return statusField(b, "VmHWM")
	}
}

func statusField(b []byte, field string) int64 {
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// postAll sends n POSTs of body to path from 4 clients, failing the test on
// any answer but want. The server does the work, and the requests go over
// plain sockets: net/http's client, built with the race detector, takes many
// seconds to send a gigabyte.
func postAll(t *testing.T, s *server, path string, n int, want int, body func(i int) []byte) {
	t.Helper()
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += 4 {
				if status := rawDo(t, s, "POST", path, body(i), nil); status != want {
					t.Errorf("POST %s: %d, want %d", path, status, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// rawDo makes a request over HTTP/1.0 (no chunks) on a connection of its own
// and reads the answer into buf (reset first), or discards it when buf is nil.
// It allocates little: with the race detector, every large allocation costs.
func rawDo(t *testing.T, s *server, method, path string, body []byte, buf *bytes.Buffer) int {
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Error(err)
		return 0
	}
	defer c.Close()
	bufs := net.Buffers{fmt.Appendf(nil, "%s %s HTTP/1.0\r\nHost: errand\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		method, path, len(body)), body}
	if _, err := bufs.WriteTo(c); err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0
	}
	defer resp.Body.Close()
	if buf == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
	}
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode
}

// withoutInputs replaces each whole input in an answer with 1, so that
// decoding it (slow under the race detector) skips the megabytes.
func withoutInputs(body, input []byte, out *bytes.Buffer) []byte {
	key := []byte(`"input":`)
	out.Reset()
	for {
		i := bytes.Index(body, key)
		if i < 0 {
			out.Write(body)
			return out.Bytes()
		}
		i += len(key)
		out.Write(body[:i])
		if body = body[i:]; bytes.HasPrefix(body, input) {
			out.WriteByte('1')
			body = body[len(input):]
		}
	}
}

// paddedJSON is a JSON object of about n bytes.
func paddedJSON(n int) []byte {
	return []byte(`{"pad":"` + strings.Repeat("x", n-10) + `"}`)
}

// TestE2EMemoryListAndLease: with 1,000 queued jobs of 1 MB input (1 GB), a
// list asking for all of them and leases asking for 1,000 keep the server
// under 300 MB: pages and lease answers are cut by bytes (a list page carries
// a cursor to the rest), and every job is still listed exactly once.
func TestE2EMemoryListAndLease(t *testing.T) {
	// Not parallel: it loads the machine (a gigabyte written, or hundreds of
	// thousands of rows scanned) and measures; run alone, it neither slows
	// other tests nor is slowed by them.
	memoryListAndLease(t)
}

// TestE2EMemoryListAndLeasePostgres is TestE2EMemoryListAndLease on
// PostgreSQL, whose driver cuts pages by bytes in SQL.
func TestE2EMemoryListAndLeasePostgres(t *testing.T) {
	memoryListAndLease(t, "ERRAND_STORE="+pgURL(t))
}

func memoryListAndLease(t *testing.T, env ...string) {
	s := startServerEnv(t, memoryConfig, false, env...)
	input := paddedJSON(1_000_000)
	const jobs = 1000
	body := append(append([]byte(`{"operation":"echo","input":`), input...), '}')
	postAll(t, s, "/v1/jobs", jobs, http.StatusAccepted, func(int) []byte { return body })
	s.kill() // what the fill took is not the workloads'
	s.start()

	done := memoryWatch(t, s)
	var buf, small bytes.Buffer // answers, and answers without their inputs
	seen, pages := map[string]bool{}, 0
	for cursor := ""; ; pages++ {
		var page struct {
			Jobs []struct {
				ID    string `json:"id"`
				Input int    `json:"input"`
			} `json:"jobs"`
			NextCursor *string `json:"next_cursor"`
		}
		if status := rawDo(t, s, "GET", "/v1/jobs?limit=1000&cursor="+cursor, nil, &buf); status != http.StatusOK {
			t.Fatalf("GET /v1/jobs: %d %s", status, truncate(buf.Bytes()))
		}
		mustJSON(t, withoutInputs(buf.Bytes(), input, &small), &page)
		if len(page.Jobs) == 0 && page.NextCursor != nil {
			t.Fatalf("page %d is empty but has a next cursor", pages)
		}
		for _, j := range page.Jobs {
			if seen[j.ID] || j.Input != 1 {
				t.Fatalf("job %s listed twice or without its whole input", j.ID)
			}
			seen[j.ID] = true
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	listPeak := done()
	if len(seen) != jobs {
		t.Fatalf("the pages listed %d jobs, want %d", len(seen), jobs)
	}
	t.Logf("list: %d jobs in %d pages, server peak RSS %d MB", len(seen), pages, listPeak>>20)

	done = memoryWatch(t, s)
	leased := 0
	for range 5 {
		var out struct {
			Leases []json.RawMessage `json:"leases"`
		}
		if status := rawDo(t, s, "POST", "/v1/leases", []byte(`{"operations":["echo"],"max_jobs":1000}`), &buf); status != http.StatusOK {
			t.Fatalf("POST /v1/leases: %d %s", status, truncate(buf.Bytes()))
		}
		mustJSON(t, withoutInputs(buf.Bytes(), input, &small), &out)
		if len(out.Leases) == 0 || len(out.Leases) == jobs {
			t.Fatalf("a lease of 1,000 jobs of 1 MB took %d of them, want fewer (but some)", len(out.Leases))
		}
		leased += len(out.Leases)
	}
	leasePeak := done()
	t.Logf("lease: 5 requests for 1,000 jobs took %d, server peak RSS %d MB", leased, leasePeak>>20)
	if listPeak > memoryCap || leasePeak > memoryCap {
		t.Fatalf("server peak RSS: list %d MB, lease %d MB, want at most %d MB", listPeak>>20, leasePeak>>20, memoryCap>>20)
	}
}

// stalledSSE opens an event stream and never reads it: the socket's receive
// buffer is 4 KiB, so the server's writes back up at once.
func stalledSSE(t *testing.T, s *server, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: errand\r\nAccept: text/event-stream\r\n\r\n", path)
	return conn
}

// TestE2EMemoryStalledSubscribers: subscribers that replay a channel's history
// and stop reading keep the server under 300 MB — four on 500 events of
// 900 KB (SSE, then WebSocket), then 200 on 3,000 events of 10 KB — because
// replay reads pages by bytes. A reader that does read still gets everything.
func TestE2EMemoryStalledSubscribers(t *testing.T) {
	// Not parallel: it loads the machine (a gigabyte written, or hundreds of
	// thousands of rows scanned) and measures; run alone, it neither slows
	// other tests nor is slowed by them.
	s := startServer(t, memoryConfig)
	for _, f := range []struct {
		channel string
		n, size int
	}{{"big.large", 500, 900_000}, {"big.small", 3000, 10_000}} {
		body := append(append([]byte(`{"type":"big","data":`), paddedJSON(f.size)...), '}')
		postAll(t, s, "/v1/channels/"+f.channel+"/events", f.n, http.StatusAccepted, func(int) []byte { return body })
	}
	s.kill() // what the fill took is not the workloads'
	s.start()

	stall := func(name string, n int, open func() func()) int64 {
		done := memoryWatch(t, s)
		var closers []func()
		for range n {
			closers = append(closers, open())
		}
		time.Sleep(3 * time.Second) // the replays block within a second; what they hold stays
		peak := done()
		for _, c := range closers {
			c()
		}
		t.Logf("%s: server peak RSS %d MB", name, peak>>20)
		return peak
	}
	peaks := map[string]int64{}
	peaks["4 SSE × 500 × 900 KB"] = stall("4 stalled SSE subscribers, 500 events of 900 KB", 4, func() func() {
		c := stalledSSE(t, s, "/v1/channels/big.large/events?after=0")
		return func() { c.Close() }
	})
	peaks["4 WS × 500 × 900 KB"] = stall("4 stalled WebSocket subscribers, 500 events of 900 KB", 4, func() func() {
		c := dialWSBuffer(t, s, 4096)
		wsjson.Write(context.Background(), c, map[string]any{"op": "subscribe", "id": "s", "channel": "big.large", "after": "0"})
		return func() { c.CloseNow() }
	})
	peaks["200 SSE × 3,000 × 10 KB"] = stall("200 stalled SSE subscribers, 3,000 events of 10 KB", 200, func() func() {
		c := stalledSSE(t, s, "/v1/channels/big.small/events?after=0")
		return func() { c.Close() }
	})
	for name, peak := range peaks {
		if peak > memoryCap {
			t.Errorf("%s: server peak RSS %d MB, want at most %d MB", name, peak>>20, memoryCap>>20)
		}
	}
	// A subscriber that reads gets the whole history, in order.
	if got := readSSE(t, s, "/v1/channels/big.large/events?after=0", 500); got != 500 {
		t.Fatalf("a reading subscriber got %d of 500 events", got)
	}
}

// readSSE reads a stream until it has seen want events with rising ids, and
// returns how many it saw.
func readSSE(t *testing.T, s *server, path string, want int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 1<<20)
	n, last := 0, int64(0)
	for n < want {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break
		}
		if id, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("id: ")); ok {
			seq, _ := strconv.ParseInt(string(id), 10, 64)
			if seq <= last {
				t.Fatalf("event %d after %d", seq, last)
			}
			last, n = seq, n+1
		}
	}
	return n
}
