package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestE2EChannelStartsLive: a channel subscriber without a cursor starts with
// what is published from then on, over SSE and WebSocket, the moment its
// answer (the SSE head, the WebSocket ack) arrives; ?after=0 replays all that
// is kept, ?last=N the last N, then both go on live. A crowd joining a busy
// channel no longer re-reads its whole history first.
func TestE2EChannelStartsLive(t *testing.T) {
	t.Parallel()
	s := startServer(t, channelConfig)
	publish := func(n int) {
		t.Helper()
		if code, _, body := s.do("POST", "/v1/channels/orders.live/events", fmt.Sprintf(`{"type":"n","data":{"n":%d}}`, n)); code != http.StatusAccepted {
			t.Fatalf("publish %d: %d %s", n, code, body)
		}
	}
	for n := 1; n <= 3; n++ {
		publish(n)
	}
	streams := map[string]<-chan string{
		"live": sseLines(t, s, "/v1/channels/orders.live/events", ""),
		"all":  sseLines(t, s, "/v1/channels/orders.live/events?after=0", ""),
		"last": sseLines(t, s, "/v1/channels/orders.live/events?last=2", ""),
	}
	ws := map[string]*websocket.Conn{}
	for name, sub := range map[string]string{"live": `{"op":"subscribe","id":"s","channel":"orders.live"}`,
		"all": `{"op":"subscribe","id":"s","channel":"orders.live","after":"0"}`, "last": `{"op":"subscribe","id":"s","channel":"orders.live","last":2}`} {
		c := dialWS(t, s)
		if err := c.Write(context.Background(), websocket.MessageText, []byte(sub)); err != nil {
			t.Fatal(err)
		}
		var ack wsMsg
		readWS(t, c, &ack)
		if ack.Op != "ack" {
			t.Fatalf("%s subscribe: %+v", name, ack)
		}
		ws[name] = c
	}
	publish(4)
	want := map[string][]int{"live": {4}, "all": {1, 2, 3, 4}, "last": {2, 3, 4}}
	for name, lines := range streams {
		if got := sseNumbers(t, lines, len(want[name])); fmt.Sprint(got) != fmt.Sprint(want[name]) {
			t.Errorf("SSE %s: got %v, want %v", name, got, want[name])
		}
	}
	for name, c := range ws {
		var got []int
		for len(got) < len(want[name]) {
			var m wsMsg
			readWS(t, c, &m)
			var d struct{ N int }
			json.Unmarshal(m.Event.Data, &d)
			got = append(got, d.N)
		}
		if fmt.Sprint(got) != fmt.Sprint(want[name]) {
			t.Errorf("WebSocket %s: got %v, want %v", name, got, want[name])
		}
	}
	if code, _, _ := s.do("GET", "/v1/channels/orders.live/events?after=0&last=1", "", "Accept", "text/event-stream"); code != http.StatusBadRequest {
		t.Errorf("after and last together: %d, want 400", code)
	}
}

// sseNumbers reads n events' data.n from an SSE stream.
func sseNumbers(t *testing.T, lines <-chan string, n int) []int {
	t.Helper()
	var out []int
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case line, ok := <-lines:
			if !ok {
				return out
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var e struct{ Data struct{ N int } }
				json.Unmarshal([]byte(data), &e)
				out = append(out, e.Data.N)
			}
		case <-timeout:
			return out
		}
	}
	return out
}

func readWS(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}

// TestE2EWebSocketReplaysBacklog: a WebSocket subscriber resuming with a
// backlog far larger than its connection's queue gets every event once, in
// order, with no reset: replayed events wait for room (nothing live waits on
// them). Before, the replay overflowed the queue at once and the subscription
// was reset, and again on every resubscribe.
func TestE2EWebSocketReplaysBacklog(t *testing.T) {
	t.Parallel()
	s := startServer(t, channelConfig)
	want := publishAll(t, s, "orders.backlog", 3000)
	c := dialWSBuffer(t, s, 4096) // a small socket buffer: the replay outruns the reader
	if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"op":"subscribe","id":"s","channel":"orders.backlog","after":"0"}`)); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for len(got) < len(want) {
		var m wsMsg
		readWS(t, c, &m)
		switch m.Op {
		case "reset":
			t.Fatalf("reset after %d of %d events (%s)", len(got), len(want), m.Reason)
		case "event":
			got = append(got, cursor(m.Event.ID))
		}
		if len(got) == 10 {
			time.Sleep(300 * time.Millisecond) // a slow start, while the replay fills the queue
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %d events, not the %d published in order", len(got), len(want))
	}
}
