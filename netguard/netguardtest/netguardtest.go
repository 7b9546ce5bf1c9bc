// Package netguardtest has what tests of the SSRF guard share: the corpus of
// hostile URLs every form of refusal is tested with, and a tripwire listener
// that records any connection that should never have been made.
package netguardtest

import (
	_ "embed"
	"net"
	"strings"
	"sync"
	"testing"
)

//go:embed hostile-urls.txt
var corpus string

// URL is a line of the corpus: a URL the guard must refuse and words its
// refusal must contain.
type URL struct{ URL, Want string }

// HostileURLs returns the corpus with port in place of PORT.
func HostileURLs(t testing.TB, port string) []URL {
	t.Helper()
	var out []URL
	for _, line := range strings.Split(corpus, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, want, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("hostile-urls.txt: no tab in %q", line)
		}
		out = append(out, URL{strings.ReplaceAll(u, "PORT", port), want})
	}
	if len(out) < 50 {
		t.Fatalf("hostile-urls.txt: %d URLs", len(out))
	}
	return out
}

// Tripwire listens on every address of this host (":0": 127.0.0.1, ::1 and
// the others) and records each connection it is sent.
type Tripwire struct {
	ln   net.Listener
	mu   sync.Mutex
	from []string
}

// NewTripwire starts a tripwire, closed by t's cleanup.
func NewTripwire(t testing.TB) *Tripwire {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	w := &Tripwire{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			w.mu.Lock()
			w.from = append(w.from, c.RemoteAddr().String()+" → "+c.LocalAddr().String())
			w.mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return w
}

// Port is the tripwire's port.
func (w *Tripwire) Port() string {
	_, p, _ := net.SplitHostPort(w.ln.Addr().String())
	return p
}

// Hits lists the connections made so far ("from → to").
func (w *Tripwire) Hits() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.from...)
}
