package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// idleConn opens a keep-alive connection, makes one request on it and leaves
// it idle. ok is false when no answer came within 2 s.
func idleConn(t *testing.T, s *server) (c net.Conn, ok bool) {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL, "http://"), 2*time.Second)
	if err != nil {
		return nil, false
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: errand\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return c, false
	}
	resp.Body.Close()
	return c, resp.StatusCode == http.StatusOK
}

// stuckConn opens a connection that sends half a request head and waits:
// busy, never idle, until the server's read_header_timeout.
func stuckConn(t *testing.T, s *server) net.Conn {
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: errand\r\n")
	return c
}

// get makes one request on a new connection and returns the status (0 when
// none came within 5 s) and the Retry-After.
func get(s *server, path string) (int, string) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(s.URL + path)
	if err != nil {
		return 0, err.Error()
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func openFiles(t *testing.T, s *server) int {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("the server is gone: %v", err)
	}
	return len(fds)
}

// TestE2EIdleConnectionsCannotExhaustFiles: with 256 open files allowed, 400
// idle keep-alive connections do not take the node dark. With no cap
// configured the cap comes from the file limit, and each new connection takes
// the place of the one idle the longest; with a cap above what the limit
// allows, accepting runs out of files, closes idle connections and waits
// (never spins), and answers every one too.
func TestE2EIdleConnectionsCannotExhaustFiles(t *testing.T) {
	t.Parallel()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prlimit (util-linux) is needed")
		}
		t.Skip("no prlimit")
	}
	for _, c := range []struct {
		name string
		env  []string
		// outOfFiles says the server should have run out of files (and said so).
		outOfFiles bool
	}{
		{"cap from the file limit", nil, false},
		{"cap above the file limit", []string{"ERRAND_HTTP__MAX_CONNECTIONS=1000"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startServerWrapped(t, testConfig, false, []string{prlimit, "--nofile=256:256", "--"}, c.env...)
			answered := 0
			for range 400 {
				if _, ok := idleConn(t, s); !ok {
					break
				}
				answered++
			}
			if status, _ := get(s, "/healthz"); status != http.StatusOK || answered < 400 {
				t.Fatalf("after %d idle connections (of 400 answered), /healthz answered %d; want all answered and 200", answered, status)
			}
			if status, _ := get(s, "/v1/operations"); status != http.StatusOK {
				t.Fatalf("GET /v1/operations beside 400 idle connections: %d, want 200", status)
			}
			if n := openFiles(t, s); n > 256 {
				t.Fatalf("the server holds %d files, more than its limit", n)
			}
			logs := s.logs.String()
			if strings.Contains(logs, "http: Accept error") || strings.Contains(logs, "out of file descriptors") != c.outOfFiles {
				t.Fatalf("out of files: want %v, and never net/http's accept retries; log:\n%s", c.outOfFiles, logs)
			}
		})
	}
}

// TestE2EConnectionCapReserve: at a configured cap of 32 held by busy
// connections (nothing idle to close), /healthz still answers from the
// reserve, other requests there get a clean 503 with Retry-After, past the
// reserve a connection is refused with a 503, and when the busy ones go the
// server serves again.
func TestE2EConnectionCapReserve(t *testing.T) {
	t.Parallel()
	s := startServerEnv(t, testConfig, false, "ERRAND_HTTP__MAX_CONNECTIONS=32")
	var stuck []net.Conn
	for range 40 { // 32 at the cap, 8 in the reserve
		stuck = append(stuck, stuckConn(t, s))
	}
	time.Sleep(200 * time.Millisecond) // accepted
	if status, _ := get(s, "/healthz"); status != http.StatusOK {
		t.Fatalf("/healthz at the cap: %d, want 200 from the reserve", status)
	}
	if status, retry := get(s, "/v1/operations"); status != http.StatusServiceUnavailable || retry == "" {
		t.Fatalf("GET /v1/operations at the cap: %d (Retry-After %q), want 503 with Retry-After", status, retry)
	}
	// Fill the reserve with more busy connections (how many places are free
	// depends on when the two answered above let go of theirs) until a
	// connection is refused.
	refused := false
	for range 3 * 16 {
		stuck = append(stuck, stuckConn(t, s))
		status, retry := get(s, "/healthz")
		if status == http.StatusServiceUnavailable && retry == "1" {
			refused = true
			break
		}
		if status != http.StatusOK {
			t.Fatalf("/healthz with the reserve filling: %d (Retry-After %q), want 200 or a 503 refusal", status, retry)
		}
	}
	if !refused {
		t.Fatalf("%d busy connections at a cap of 32: /healthz was never refused", len(stuck))
	}
	for _, c := range stuck {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, _ := get(s, "/v1/operations")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/operations after the busy connections closed: %d, want 200", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
