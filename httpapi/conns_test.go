package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestConnLimitShedsIdle: at a cap of 8 (four clients, each with at most two
// connections not idle: the one it asks on, the one it just left), each of 100
// new connections is served in the place of the one idle the longest, and the
// count never passes the cap.
func TestConnLimitShedsIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewConnLimit(8, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := &http.Server{Handler: l.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })),
		ConnState: l.ConnState, ConnContext: l.ConnContext}
	go srv.Serve(l.Listener(ln, true))
	defer srv.Close()
	// 100 connections, each kept open after its answer: once the cap is
	// reached, each new one takes the place of the one idle the longest.
	for i := range 100 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /x%d HTTP/1.1\r\nHost: t\r\n\r\n", i)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
		if n := l.Open(); n > 8 {
			t.Fatalf("%d connections open, cap 8", n)
		}
		waitIdle(t, l, min(i+1, 8)) // the server has parked it: it may be shed
	}
}

// waitIdle waits until n connections are idle (the server parks a connection
// just after it answered, on its own goroutine).
func waitIdle(t *testing.T, l *ConnLimit, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		idle := l.idle.Len()
		l.mu.Unlock()
		if idle >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections idle after 5 s, want %d", idle, n)
		}
	}
}
