package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCheckIP(t *testing.T) {
	g := &Guard{}
	for _, ip := range []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
		"0.0.0.0", "::1", "::", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "64:ff9b::a00:1"} {
		if err := g.CheckIP(netip.MustParseAddr(ip)); err == nil {
			t.Errorf("CheckIP(%s) = nil, want refused", ip)
		}
	}
	for _, ip := range []string{"8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.216.34"} {
		if err := g.CheckIP(netip.MustParseAddr(ip)); err != nil {
			t.Errorf("CheckIP(%s) = %v, want allowed", ip, err)
		}
	}
	lo, _ := New([]string{"127.0.0.0/8"})
	if err := lo.CheckIP(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("allowlisted loopback refused: %v", err)
	}
	if err := lo.CheckIP(netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Errorf("the allowlist for loopback let 10.0.0.1 through")
	}
	if _, err := New([]string{"localhost"}); err == nil {
		t.Errorf("New accepted a non-CIDR allow entry")
	}
}

func TestCheckURL(t *testing.T) {
	g := &Guard{}
	ctx := context.Background()
	for _, u := range []string{"ftp://example.com/x", "file:///etc/passwd", "http://", "http://user:pw@example.com/",
		"http://127.0.0.1/", "http://[::1]:8080/", "http://169.254.169.254/latest/meta-data", "http://10.0.0.5/hook",
		"http://localhost:9/", "gopher://x", "javascript:alert(1)", "http://[::ffff:127.0.0.1]/", "http://" + strings.Repeat("a", 2050)} {
		if err := g.CheckURL(ctx, u); err == nil {
			t.Errorf("CheckURL(%q) = nil, want refused", u)
		}
	}
	if err := g.CheckURL(ctx, "https://93.184.216.34/hooks"); err != nil {
		t.Errorf("CheckURL(public IP) = %v", err)
	}
}

// TestDialRefusesAtConnectTime: whatever a name resolved to when it was checked,
// the connection itself is refused when it goes to a blocked address.
func TestDialRefusesAtConnectTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	url := "http://localhost:" + port + "/" // a name, resolved only when dialing
	guarded := &http.Client{Transport: &http.Transport{DialContext: (&Guard{}).Dialer(time.Second).DialContext}}
	_, err := guarded.Get(url)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("GET %s through the guard = %v, want ErrRefused", url, err)
	}
	allowed, _ := New([]string{"127.0.0.0/8", "::1/128"})
	ok := &http.Client{Transport: &http.Transport{DialContext: allowed.Dialer(time.Second).DialContext}}
	resp, err := ok.Get(url)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("GET with loopback allowed = %v, %v", resp, err)
	}
	resp.Body.Close()
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1/", "https://example.com", "http://[::ffff:7f00:1]/", "http://0x7f000001/"} {
		f.Add(s)
	}
	g := &Guard{}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseHostIP(s)
		if err == nil && g.CheckURL(context.Background(), s) == nil && !g.allowed(u) {
			t.Fatalf("CheckURL(%q) allowed blocked %s", s, u)
		}
	})
}

// parseHostIP returns the literal IP of a URL's host, if it has one.
func parseHostIP(s string) (netip.Addr, error) {
	h := s
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	h = strings.SplitN(h, "/", 2)[0]
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return netip.ParseAddr(strings.Trim(h, "[]"))
}

func (g *Guard) allowed(ip netip.Addr) bool { return g.CheckIP(ip) == nil }
