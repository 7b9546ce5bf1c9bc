package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/errandhq/errand/client"
	"github.com/errandhq/errand/worker"
)

const channelConfig = testConfig + "channels:\n  \"orders.*\": { history: 1h }\n  \"shape.*\": { schema: { type: object, required: [n] } }\n"

// publishAll publishes n events to channel with 8 publishers and returns their
// cursors in log order.
func publishAll(t *testing.T, s *server, channel string, n int) []int64 {
	var mu sync.Mutex
	var ids []int64
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.client()
			for i := p; i < n; i += 8 {
				var out struct{ ID string }
				if _, err := c.Do(context.Background(), "POST", "/v1/channels/"+channel+"/events",
					map[string]any{"type": "order.created", "data": map[string]int{"n": i}}, nil, &out); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				id, _ := strconv.ParseInt(out.ID, 10, 64)
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(ids)
	return ids
}

// TestE2ESubscribersResumeAtRandom publishes 10,000 events while 20 SSE
// subscribers connect, drop and resume at random: each sees every event once, in order.
func TestE2ESubscribersResumeAtRandom(t *testing.T) {
	t.Parallel()
	s := startServer(t, channelConfig)
	const n, subs = 10000, 20
	got := make([][]int64, subs)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond) // some join late and replay
			c := client.New(s.URL, client.WithReconnectDelay(10*time.Millisecond))
			after := "0" // from the start: some join late and replay
			for len(got[i]) < n && ctx.Err() == nil {
				// Stay connected for a random while, then drop and resume.
				sctx, stop := context.WithTimeout(ctx, time.Duration(50+rand.IntN(400))*time.Millisecond)
				_ = c.Subscribe(sctx, "orders.created", after, func(e client.Event) error {
					id, _ := strconv.ParseInt(e.ID, 10, 64)
					got[i] = append(got[i], id)
					after = e.ID
					if len(got[i]) == n {
						return errors.New("all seen")
					}
					return nil
				})
				stop()
			}
		}()
	}
	want := publishAll(t, s, "orders.created", n)
	wg.Wait()
	for i, g := range got {
		if !slices.Equal(g, want) {
			t.Fatalf("subscriber %d saw %d events (first difference at %d), want all %d once in order", i, len(g), firstDiff(g, want), n)
		}
	}
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func dialWS(t *testing.T, s *server) *websocket.Conn { return dialWSBuffer(t, s, 0) }

// dialWSBuffer dials /v1/ws; rcvbuf > 0 caps the client socket's receive buffer
// (a reader that stops then backs up into the server quickly, whatever the
// kernel's autotuning would have absorbed).
func dialWSBuffer(t *testing.T, s *server, rcvbuf int) *websocket.Conn {
	t.Helper()
	d := &net.Dialer{}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
		}
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws",
		&websocket.DialOptions{Subprotocols: []string{"errand.v1"}, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

type wsMsg struct {
	Op     string         `json:"op"`
	ID     string         `json:"id"`
	Sub    string         `json:"sub"`
	Reason string         `json:"reason"`
	Event  client.Event   `json:"event"`
	Error  map[string]any `json:"error"`
}

// TestE2ESlowWebSocketSubscriber: a subscriber that stops reading is reset; a
// fast one on the same channel gets everything; publishing does not slow down.
func TestE2ESlowWebSocketSubscriber(t *testing.T) {
	t.Parallel()
	s := startServer(t, channelConfig)
	ctx := context.Background()
	// 400 events of 32 KiB: 12.8 MB, far more than the sockets hold, published in
	// a few seconds (well inside the server's 10 s write timeout).
	const n = 400
	// Publish latency with nobody slow.
	before := publishLatency(t, s, "orders.warmup", n)

	slow, fast := dialWSBuffer(t, s, 4096), dialWS(t, s)
	for _, c := range []*websocket.Conn{slow, fast} {
		wsjson.Write(ctx, c, map[string]any{"op": "subscribe", "id": "s", "channel": "orders.created"})
		var ack wsMsg
		wsjson.Read(ctx, c, &ack)
	}
	fastGot := make(chan int, 1)
	go func() {
		count, last := 0, int64(0)
		for count < n {
			var m wsMsg
			if err := wsjson.Read(ctx, fast, &m); err != nil {
				break
			}
			id, _ := strconv.ParseInt(m.Event.ID, 10, 64)
			if m.Op != "event" || id <= last {
				break
			}
			last, count = id, count+1
		}
		fastGot <- count
	}()
	during := publishLatency(t, s, "orders.created", n) // the slow one reads nothing meanwhile
	if got := <-fastGot; got != n {
		t.Fatalf("the fast subscriber got %d of %d events in order", got, n)
	}
	// The slow one now reads: some events, then a reset for its subscription.
	sawReset := false
	for i := 0; i < 10*n && !sawReset; i++ {
		var m wsMsg
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := wsjson.Read(rctx, slow, &m)
		cancel()
		if err != nil {
			break
		}
		sawReset = m.Op == "reset" && m.Sub == "s" && m.Reason == "slow_consumer"
	}
	if !sawReset {
		t.Fatalf("the slow subscriber was never reset")
	}
	t.Logf("publish latency p50/p99: %v/%v alone, %v/%v with a stalled subscriber", before[0], before[1], during[0], during[1])
	if during[1] > 10*before[1]+50*time.Millisecond {
		t.Fatalf("a stalled subscriber slowed publishing: p99 %v, was %v", during[1], before[1])
	}
}

// publishLatency publishes n events of 32 KiB one at a time (more than socket
// buffers hold, so a reader that stops really falls behind) and returns p50 and p99.
func publishLatency(t *testing.T, s *server, channel string, n int) [2]time.Duration {
	c := s.client()
	lat := make([]time.Duration, 0, n)
	pad := strings.Repeat("x", 32<<10)
	for i := range n {
		start := time.Now()
		if _, err := c.Do(context.Background(), "POST", "/v1/channels/"+channel+"/events",
			map[string]any{"type": "tick", "data": map[string]any{"n": i, "pad": pad}}, nil, nil); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return [2]time.Duration{lat[n/2], lat[n*99/100]}
}

// TestE2EStreamBadInput: malformed and hostile input on WebSocket and SSE gets a
// clear error; the connection stays usable or is closed cleanly; the server is fine.
func TestE2EStreamBadInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, channelConfig)
	ctx := context.Background()
	c := dialWS(t, s)
	ask := func(raw string) wsMsg {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(raw)); err != nil {
			t.Fatal(err)
		}
		var m wsMsg
		if err := wsjson.Read(ctx, c, &m); err != nil {
			t.Fatalf("after %s: %v", raw, err)
		}
		return m
	}
	for _, tt := range []struct{ send, code string }{
		{`{"op":`, "malformed_json"},
		{`[1,2]`, "malformed_json"},
		{`{"op":"launch","id":"a"}`, "invalid_request"},
		{`{"op":"subscribe","id":"b","channel":"nope.x"}`, "channel_not_found"},
		{`{"op":"subscribe","id":"c","channel":"orders.x","after":"garbage"}`, "invalid_cursor"},
		{`{"op":"subscribe","id":"d"}`, "invalid_request"},
		{`{"op":"subscribe","id":"e","job":"job_01M81FYDCTE1X91SVCMDMS18K4"}`, "job_not_found"},
		{`{"op":"publish","id":"f","channel":"shape.x","type":"t","data":{"m":1}}`, "validation_failed"},
		{`{"op":"publish","id":"g","channel":"orders.x","type":""}`, "validation_failed"},
		{`{"op":"submit","id":"h","operation":"nope"}`, "operation_not_found"},
		{`{"op":"unsubscribe","id":"zz"}`, "not_found"},
		{`{"op":"ping","id":"p","extra":1}`, "validation_failed"},
	} {
		m := ask(tt.send)
		if m.Op != "error" || m.Error["code"] != tt.code {
			t.Errorf("%s → %+v, want error %s", tt.send, m, tt.code)
		}
	}
	if m := ask(`{"op":"ping","id":"still-alive"}`); m.Op != "pong" || m.ID != "still-alive" {
		t.Fatalf("connection not usable after bad input: %+v", m)
	}
	// Oversized message: closed with 1009. Binary frame: 1003. No sub-protocol: 1008.
	big := dialWS(t, s)
	big.Write(ctx, websocket.MessageText, []byte(`{"op":"publish","data":"`+strings.Repeat("x", 70000)+`"}`))
	if _, _, err := big.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Errorf("oversized message: %v, want close 1009", err)
	}
	bin := dialWS(t, s)
	bin.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
	if _, _, err := bin.Read(ctx); websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Errorf("binary frame: %v, want close 1003", err)
	}
	nop, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws", nil)
	if err == nil {
		_, _, err = nop.Read(ctx)
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Errorf("no sub-protocol: %v, want close 1008", err)
		}
	}
	// SSE: a garbage Last-Event-ID is a 400, an undeclared channel a 404.
	for _, tt := range []struct {
		path, lastID string
		status       int
	}{
		{"/v1/channels/orders.x/events", "garbage", 400},
		{"/v1/channels/nope.x/events", "", 404},
		{"/v1/channels/..%2Fetc/events", "", 400},
	} {
		req, _ := http.NewRequest("GET", s.URL+tt.path, nil)
		req.Header.Set("Accept", "text/event-stream")
		if tt.lastID != "" {
			req.Header.Set("Last-Event-ID", tt.lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != tt.status {
			t.Errorf("SSE %s (Last-Event-ID %q) = %v %v, want %d", tt.path, tt.lastID, resp.Status, err, tt.status)
		}
		resp.Body.Close()
	}
	if code, _, _ := s.do("GET", "/healthz", ""); code != 200 {
		t.Fatalf("server unhealthy after bad input")
	}
	_ = fmt.Sprint
}

// TestGoSocket drives the Go SDK's WebSocket client: submit and watch a job,
// publish and receive on a channel over one connection.
func TestGoSocket(t *testing.T) {
	t.Parallel()
	s := startServer(t, channelConfig)
	runWorker(t, s, "echo", func(ctx context.Context, j *worker.Job) (any, error) { return "ok", nil })
	ctx := ctxTimeout(t, 20*time.Second)
	sock, err := s.client().Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	events, err := sock.Subscribe(ctx, "orders.created", "", "", 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sock.Publish(ctx, "orders.created", "order.created", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if e := <-events; e.Type != "order.created" || string(e.Data) != `{"n":1}` {
		t.Fatalf("channel event = %+v", e)
	}
	j, err := sock.Submit(ctx, "echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	jobEvents, _ := sock.Subscribe(ctx, "", j.ID, "", 16)
	var types []string
	for e := range jobEvents {
		types = append(types, e.Type)
		if e.Type == "job.succeeded" {
			break
		}
	}
	if strings.Join(types, " ") != "job.created job.started job.succeeded" {
		t.Fatalf("job events over the Go socket: %v", types)
	}
	if _, err := sock.Publish(ctx, "nope.x", "t", nil); err == nil || !strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("publish to an undeclared channel: %v", err)
	}
}

// TestE2ESSEOverHTTP2 follows a job over HTTP/2 (prior knowledge) to its end,
// then reconnects with the last cursor and gets 204: nothing more will come.
func TestE2ESSEOverHTTP2(t *testing.T) {
	t.Parallel()
	s := startServer(t, channelConfig)
	runWorker(t, s, "echo", func(ctx context.Context, j *worker.Job) (any, error) {
		time.Sleep(200 * time.Millisecond)
		return "ok", nil
	})
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: p}}
	j := submit(t, s, "echo", nil)
	req, _ := http.NewRequest("GET", s.URL+"/v1/jobs/"+j.ID+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body) // the stream ends after the terminal event
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("over HTTP/2: %s %v", resp.Proto, resp.Header)
	}
	text := string(body)
	ids := regexp.MustCompile(`(?m)^id: (\d+)$`).FindAllStringSubmatch(text, -1)
	if !strings.HasPrefix(text, "retry: 2000\n\n") || len(ids) != 3 || !strings.Contains(text, "event: job.succeeded\n") {
		t.Fatalf("SSE over HTTP/2:\n%s", text)
	}
	req.Header.Set("Last-Event-ID", ids[2][1])
	resp, err = h2.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("reconnect to a finished job = %v %v, want 204", resp.Status, err)
	}
	resp.Body.Close()
}
