package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
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
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				fmt.Fprintf(c, "GET /x%d-%d HTTP/1.1\r\nHost: t\r\n\r\n", g, i)
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Errorf("request %d-%d: %v %v", g, i, resp, err)
					return
				}
				resp.Body.Close()
				if n := l.Open(); n > 8 {
					t.Errorf("%d connections open, cap 8", n)
				}
			}
		}()
	}
	wg.Wait()
}
