package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The machine's brokers the bridge tests talk to (test.sh starts any that
// is stopped). Under CI=true one that does not answer fails the test.
const (
	natsAddr = "127.0.0.1:4222"
	mqttAddr = "127.0.0.1:1883"
	amqpAddr = "127.0.0.1:5672"
)

// needBroker skips (or under CI fails) a test whose broker does not answer.
func needBroker(t *testing.T, name, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s at %s does not answer (test.sh starts it): %v", name, addr, err)
	}
	t.Skipf("%s at %s does not answer (test.sh starts it): %v", name, addr, err)
}

// unique is a name no other test (or run) uses: its subjects, topics,
// queues and groups.
func unique(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// proxy is a loopback TCP proxy to a broker that the test can cut (every
// connection dropped, new ones refused) and restore, as if the broker went
// away: the machine's brokers are shared by tests running in parallel, so
// none is stopped.
type proxy struct {
	t      *testing.T
	target string
	ln     net.Listener
	Addr   string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, target: target, ln: ln, Addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.Cut() })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut drops every connection and refuses new ones until Restore.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (p *proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// publishN publishes n events to a channel over HTTP (16 at a time) and
// returns their ids; every one must be acknowledged.
func publishN(t *testing.T, s *server, channel string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	var failed sync.Once
	next := make(chan int)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 30 * time.Second}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				resp, err := hc.Post(s.URL+"/v1/channels/"+channel+"/events", "application/json",
					strings.NewReader(fmt.Sprintf(`{"type":"tick","data":{"n":%d}}`, i)))
				if err != nil {
					failed.Do(func() { t.Errorf("publish %d: %v", i, err) })
					continue
				}
				var out struct{ ID string }
				json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					failed.Do(func() { t.Errorf("publish %d: %d", i, resp.StatusCode) })
				}
				ids[i] = out.ID
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return ids
}

// received reads a client's JSON lines until it prints {"done":true}, or
// until timeout (then the test fails with what it saw).
func received(t *testing.T, out <-chan string, timeout time.Duration) []map[string]any {
	t.Helper()
	var got []map[string]any
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-out:
			if !ok {
				t.Fatalf("the client ended early after %d messages", len(got))
			}
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) != nil {
				continue
			}
			if m["done"] == true {
				return got
			}
			if m["ready"] == true {
				continue
			}
			got = append(got, m)
		case <-deadline:
			t.Fatalf("after %s the client had %d messages", timeout, len(got))
		}
	}
}

// waitClient waits for a client's {"ready":true} line.
func waitClient(t *testing.T, out <-chan string) {
	t.Helper()
	var seen []string
	waitLine(t, out, `"ready":true`, &seen)
}

// ids is the event id (data.id) of each message, in the order received.
func eventIDs(msgs []map[string]any) []string {
	var out []string
	for _, m := range msgs {
		d, _ := m["data"].(map[string]any)
		id, _ := d["id"].(string)
		out = append(out, id)
	}
	return out
}

// checkOnceInOrder checks that got holds every id of want, the first
// occurrences in log order, and that every repeat came back with the same
// de-duplication id (dedupID returns a message's); it returns how many repeats.
func checkOnceInOrder(t *testing.T, want []string, got []map[string]any, dedupID func(map[string]any) string) int {
	t.Helper()
	want = slices.Clone(want) // log order: by cursor
	slices.SortFunc(want, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	pos := map[string]int{}
	for i, id := range want {
		pos[id] = i
	}
	seen := map[string]bool{}
	last, dups := -1, 0
	for _, m := range got {
		id := eventIDs([]map[string]any{m})[0]
		if d := dedupID(m); d != id {
			t.Fatalf("message of event %s carries de-duplication id %q", id, d)
		}
		if seen[id] {
			dups++
			continue
		}
		seen[id] = true
		p, ok := pos[id]
		if !ok {
			t.Fatalf("event %s was not published by the test", id)
		}
		if p < last {
			t.Fatalf("event %s (published %dth) arrived after the %dth: out of order", id, p, last)
		}
		last = p
	}
	if len(seen) != len(want) {
		t.Fatalf("%d of %d events arrived", len(seen), len(want))
	}
	return dups
}

// bridgeStatus reads GET /v1/bridges.
func bridgeStatus(t *testing.T, s *server) []map[string]any {
	t.Helper()
	_, _, b := s.do("GET", "/v1/bridges", "")
	var out struct{ Bridges []map[string]any }
	mustJSON(t, b, &out)
	return out.Bridges
}

// lineReader turns a reader into a channel of lines.
func lineReader(r io.Reader) <-chan string {
	c := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			c <- sc.Text()
		}
		close(c)
	}()
	return c
}

var _ = context.Background
