package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"
)

// copyFiles copies the SQLite database files (main, WAL, shared memory) from
// one prefix to another, removing the copies of files the source lacks.
func copyFiles(t *testing.T, from, to string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(from + suffix)
		if os.IsNotExist(err) {
			os.Remove(to + suffix)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// sseLines opens an event stream with a Last-Event-ID and returns its lines.
func sseLines(t *testing.T, s *server, path, lastID string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s with Last-Event-ID %s: %d", path, lastID, resp.StatusCode)
	}
	out := make(chan string, 100)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			out <- sc.Text()
		}
	}()
	return out
}

// waitFor reads lines until one has want as its prefix, failing after 10 s.
func waitFor(t *testing.T, lines <-chan string, want string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the stream ended before %q", want)
			}
			if strings.HasPrefix(l, want) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q within 10 s", want)
		}
	}
}

// TestE2ECursorAheadOfLog: after the store is restored from a backup, a client
// resuming from a cursor it saw before (now beyond the log's head) is told to
// reset — SSE frame, WebSocket message, or 400 for a JSON page — instead of
// silently missing every new event up to its old cursor.
func TestE2ECursorAheadOfLog(t *testing.T) {
	t.Parallel()
	s := startServer(t, channelConfig)
	db := filepath.Join(s.dir, "errand.db")
	for range 3 {
		publish(t, s, "orders.created", "order.created")
	}
	s.kill()
	copyFiles(t, db, filepath.Join(s.dir, "backup.db"))
	s.start()
	var seen string
	for range 5 {
		seen = publish(t, s, "orders.created", "order.created")
	}
	s.kill()
	copyFiles(t, filepath.Join(s.dir, "backup.db"), db) // the restore: cursors 4 to 8 are gone
	s.start()

	lines := sseLines(t, s, "/v1/channels/orders.created/events", seen)
	reset := waitFor(t, lines, "data: ")
	var r struct {
		Reason      string `json:"reason"`
		ResumeAfter string `json:"resume_after"`
	}
	json.Unmarshal([]byte(strings.TrimPrefix(reset, "data: ")), &r)
	if r.Reason != "cursor_ahead" || r.ResumeAfter != "3" {
		t.Fatalf("SSE after %s: first frame %q, want a reset (cursor_ahead) resuming after 3", seen, reset)
	}
	next := publish(t, s, "orders.created", "order.created") // cursor 4 again, below the client's old one
	if got := waitFor(t, lines, "id: "); got != "id: "+next {
		t.Fatalf("after the reset the stream sent %q, want the new event %s", got, next)
	}

	ws := dialWS(t, s)
	ctx := ctxTimeout(t, 10*time.Second)
	wsjson.Write(ctx, ws, map[string]any{"op": "subscribe", "id": "s1", "channel": "orders.created", "after": seen})
	for {
		var m struct {
			wsMsg
			ResumeAfter string `json:"resume_after"`
		}
		if err := wsjson.Read(ctx, ws, &m); err != nil {
			t.Fatalf("WebSocket subscribe after %s: no reset: %v", seen, err)
		}
		if m.Op == "event" {
			t.Fatalf("WebSocket subscribe after %s: got event %s, want a reset", seen, m.Event.ID)
		}
		if m.Op == "reset" {
			if m.Sub != "s1" || m.Reason != "cursor_ahead" || m.ResumeAfter != next {
				t.Fatalf("WebSocket reset = %+v, want sub s1, cursor_ahead, resume after %s", m, next)
			}
			break
		}
	}

	status, _, body := s.do("GET", "/v1/channels/orders.created/events?after="+seen, "")
	if status != http.StatusBadRequest || !strings.Contains(string(body), "invalid_cursor") {
		t.Fatalf("JSON page after %s: %d %s, want 400 invalid_cursor", seen, status, body)
	}
}
