package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/netguard/netguardtest"
)

// noDNS is a resolver that answers from /etc/hosts only: the tests never wait
// on (or depend on) a DNS server.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no DNS in this test")
}}

// loopbackAllowed is the guard of errand demo and --dev.
func loopbackAllowed(t testing.TB) *Guard {
	g, err := New([]string{"127.0.0.0/8", "::1/128"})
	if err != nil {
		t.Fatal(err)
	}
	g.Resolver = noDNS
	return g
}

func TestCheckIP(t *testing.T) {
	g := &Guard{}
	for _, c := range []struct{ ip, want string }{
		{"127.0.0.1", "127.0.0.0/8 (loopback)"},
		{"10.1.2.3", "10.0.0.0/8 (private)"},
		{"172.16.0.1", "172.16.0.0/12"},
		{"192.168.1.1", "192.168.0.0/16"},
		{"169.254.169.254", "169.254.0.0/16"},
		{"100.64.0.1", "100.64.0.0/10"},
		{"0.0.0.0", "0.0.0.0/8"},
		{"192.88.99.1", "192.88.99.0/24"},
		{"224.0.0.1", "224.0.0.0/4"},
		{"255.255.255.255", "240.0.0.0/4"},
		{"::1", "::1/128 (loopback)"},
		{"::", "::/128 (unspecified)"},
		{"fe80::1", "fe80::/10"},
		{"fd00:ec2::254", "fc00::/7"},
		{"ff02::1", "ff00::/8"},
		{"2001:db8::1", "2001:db8::/32"},
		{"3fff::1", "3fff::/20"},
		{"5f00::1", "5f00::/16"},
		{"2001:2::1", "2001:2::/48"},
		{"100::1", "100::/64"},
		// Zone ids, on any address: a zoned address is in no prefix.
		{"::1%lo", "zone id (%lo)"},
		{"::1%1", "zone id (%1)"},
		{"fe80::1%eth0", "zone id (%eth0)"},
		{"fd00::1%eth0", "zone id"},
		{"::ffff:127.0.0.1%lo", "zone id"},
		{"2606:4700:4700::1111%eth0", "zone id"},
		// IPv4-mapped: the IPv4 address.
		{"::ffff:127.0.0.1", "127.0.0.1 is in 127.0.0.0/8"},
		{"::ffff:10.0.0.1", "10.0.0.0/8"},
		// IPv4-compatible: deprecated, refused whatever it carries.
		{"::127.0.0.1", "::/96"},
		{"::8.8.8.8", "::/96"},
		// IPv4 carried in IPv6: the IPv4 address is checked.
		{"::ffff:0:127.0.0.1", "embeds 127.0.0.1 (IPv4-translated)"},
		{"64:ff9b::a00:1", "embeds 10.0.0.1 (NAT64)"},
		{"64:ff9b::127.0.0.1", "embeds 127.0.0.1 (NAT64)"},
		{"64:ff9b:1::808:808", "64:ff9b:1::/48"},
		{"2002:7f00:1::", "embeds 127.0.0.1 (6to4)"},
		{"2002:a9fe:a9fe:1:2:3:4:5", "embeds 169.254.169.254 (6to4)"},
		{"2002:c058:6301::", "embeds 192.88.99.1 (6to4)"},
		{"2001:0:7f00:1::", "embeds 127.0.0.1 (Teredo server)"},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", "embeds 127.0.0.1 (Teredo client)"},
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", "embeds 10.0.0.1 (Teredo client)"},
	} {
		err := g.CheckIP(netip.MustParseAddr(c.ip))
		if err == nil || !strings.Contains(errand.ErrorMessage(err), c.want) {
			t.Errorf("CheckIP(%s) = %v, want refused saying %q", c.ip, err, c.want)
		}
	}
	for _, ip := range []string{"8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.216.34", "::ffff:8.8.8.8",
		"64:ff9b::808:808", "2002:808:808::1", "2001:0:4136:e378:8000:63bf:f7f7:f7f7", "::ffff:0:8.8.8.8"} {
		if err := g.CheckIP(netip.MustParseAddr(ip)); err != nil {
			t.Errorf("CheckIP(%s) = %v, want allowed", ip, err)
		}
	}
}

func TestCheckIPAllowed(t *testing.T) {
	lo := loopbackAllowed(t)
	for _, ip := range []string{"127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"} {
		if err := lo.CheckIP(netip.MustParseAddr(ip)); err != nil {
			t.Errorf("with loopback allowed, CheckIP(%s) = %v", ip, err)
		}
	}
	for _, c := range []struct{ ip, want string }{
		{"10.0.0.1", "10.0.0.0/8"}, {"::1%lo", "zone id"}, {"::ffff:127.0.0.1%lo", "zone id"}, {"fe80::1%lo", "zone id"},
		{"::127.0.0.1", "::/96"}, {"169.254.169.254", "169.254.0.0/16"},
	} {
		if err := lo.CheckIP(netip.MustParseAddr(c.ip)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("with loopback allowed, CheckIP(%s) = %v, want refused saying %q", c.ip, err, c.want)
		}
	}
	mapped, _ := New([]string{"::ffff:10.0.0.0/104"})
	if err := mapped.CheckIP(netip.MustParseAddr("10.1.2.3")); err != nil {
		t.Errorf("allow ::ffff:10.0.0.0/104 refused 10.1.2.3: %v", err)
	}
	if _, err := New([]string{"localhost"}); err == nil {
		t.Errorf("New accepted a non-CIDR allow entry")
	}
}

func TestCheckURL(t *testing.T) {
	g := &Guard{Resolver: noDNS}
	ctx := context.Background()
	for _, h := range netguardtest.HostileURLs(t, "8080") {
		err := g.CheckURL(ctx, h.URL)
		if err == nil || !strings.Contains(errand.ErrorMessage(err), h.Want) {
			t.Errorf("CheckURL(%q) = %v, want refused saying %q", h.URL, err, h.Want)
		}
	}
	for _, c := range []struct{ url, want string }{
		{"file:///etc/passwd", "http:// or https://"},
		{"gopher://x", "http:// or https://"},
		{"javascript:alert(1)", "http:// or https://"},
		{"http://", "no host"},
		{"http://" + strings.Repeat("a", 2050), "at most 2048 bytes"},
		{"http://no-such-host.invalid/", "cannot resolve"},
		{"http://localhost:9/", `"localhost" is a localhost name (RFC 6761) for 127.0.0.1: 127.0.0.1 is in 127.0.0.0/8`},
		{"http://[::1%25lo]:8080/", "::1%lo has an IPv6 zone id (%lo)"},
		{"http://0x7f.1/", `the host "0x7f.1" is an IPv4 address in a non-standard spelling (it means 127.0.0.1)`},
	} {
		err := g.CheckURL(ctx, c.url)
		if err == nil || !strings.Contains(errand.ErrorMessage(err), c.want) {
			t.Errorf("CheckURL(%.60q) = %v, want refused saying %q", c.url, err, c.want)
		}
	}
	for _, u := range []string{"https://93.184.216.34/hooks", "http://8.8.8.8:8080/x?y=1#z", "http://[2606:4700:4700::1111]/",
		"http://[::ffff:8.8.8.8]/", "http://[64:ff9b::808:808]/", "http://[2002:808:808::1]/", "HTTPS://1.1.1.1/"} {
		if err := g.CheckURL(ctx, u); err != nil {
			t.Errorf("CheckURL(%q) = %v, want accepted", u, err)
		}
	}
}

// TestCheckURLHostsFile: every name /etc/hosts points at loopback is refused.
func TestCheckURLHostsFile(t *testing.T) {
	b, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Skip("no /etc/hosts")
	}
	g := &Guard{Resolver: noDNS}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.SplitN(line, "#", 2)[0])
		if len(f) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(f[0])
		if err != nil || !ip.Unmap().IsLoopback() {
			continue
		}
		for _, name := range f[1:] {
			n++
			err := g.CheckURL(context.Background(), "http://"+name+":8080/")
			if err == nil || !strings.Contains(errand.ErrorMessage(err), "loopback") {
				t.Errorf("CheckURL(http://%s:8080/), %s in /etc/hosts: %v, want refused (loopback)", name, ip, err)
			}
		}
	}
	if n == 0 {
		t.Errorf("/etc/hosts names no loopback address (localhost at least?)")
	}
}

// TestCheckURLLoopbackAllowed: errand demo and --dev reach loopback, spelled
// plainly, but never with a zone id nor in the ambiguous spellings.
func TestCheckURLLoopbackAllowed(t *testing.T) {
	lo := loopbackAllowed(t)
	ctx := context.Background()
	for _, u := range []string{"http://127.0.0.1:8080/hook", "http://[::1]:8080/", "http://localhost:3000/", "http://LOCALHOST.:3000/",
		"http://[::ffff:127.0.0.1]/"} {
		if err := lo.CheckURL(ctx, u); err != nil {
			t.Errorf("with loopback allowed, CheckURL(%q) = %v", u, err)
		}
	}
	for _, c := range []struct{ url, want string }{
		{"http://[::1%25lo]:8080/", "zone id"}, {"http://[::ffff:127.0.0.1%25lo]/", "zone id"}, {"http://[fe80::1%25lo]/", "zone id"},
		{"http://0x7f.1/", "non-standard"}, {"http://127.1/", "non-standard"}, {"http://127.0.0.1./", "non-standard"},
		{"http://10.0.0.1/", "10.0.0.0/8"}, {"http://good@127.0.0.1/", "credentials"},
	} {
		if err := lo.CheckURL(ctx, c.url); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("with loopback allowed, CheckURL(%q) = %v, want refused saying %q", c.url, err, c.want)
		}
	}
}

func TestParseIPv4(t *testing.T) {
	for _, c := range []struct {
		host, want string
	}{
		{"2130706433", "127.0.0.1"}, {"0x7f000001", "127.0.0.1"}, {"0x7f.1", "127.0.0.1"}, {"0177.0.0.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"}, {"127.0.1", "127.0.0.1"}, {"127.0.0.1.", "127.0.0.1"}, {"017700000001", "127.0.0.1"},
		{"0", "0.0.0.0"}, {"0x", "0.0.0.0"}, {"192.168.257", "192.168.1.1"}, {"0xA9.0xFE.0xA9.0xFE", "169.254.169.254"},
		{"4294967295", "255.255.255.255"},
		{"4294967296", ""}, {"256.0.0.1", ""}, {"1.2.3.4.5", ""}, {"1.2.3.256", ""}, {"1.2.65536", ""}, {"08", ""},
		{"1..2", ""}, {"0x1g", ""}, {"example.1", ""}, {"-1", ""}, {"+1", ""}, {"1_0", ""},
	} {
		ip, ok := parseIPv4(c.host)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != c.want {
			t.Errorf("parseIPv4(%q) = %q, want %q", c.host, got, c.want)
		}
	}
}

// TestDialerRefuses: the Control hook refuses what the dialer is about to
// connect to, zone ids included, and the listener on this host sees nothing.
func TestDialerRefuses(t *testing.T) {
	wire := netguardtest.NewTripwire(t)
	p := wire.Port()
	for _, g := range []*Guard{{Resolver: noDNS}, loopbackAllowed(t)} {
		for _, host := range []string{"[::1%lo]", "[::1%1]", "[fe80::1%lo]", "[::ffff:127.0.0.1%lo]", "[::127.0.0.1]",
			"[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]", "0.0.0.0", "[::]"} {
			c, err := g.Dialer(time.Second).DialContext(context.Background(), "tcp", host+":"+p)
			if c != nil {
				c.Close()
			}
			if errors.Is(err, syscall.EAFNOSUPPORT) {
				continue // a host without IPv6
			}
			if !errors.Is(err, ErrRefused) {
				t.Errorf("dial %s:%s (allow %v) = %v, want ErrRefused", host, p, g.allow, err)
			}
		}
	}
	if hits := wire.Hits(); len(hits) > 0 {
		t.Errorf("connections reached this host: %v", hits)
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

// errOffHost stops a test's connection to an address that is not this host's:
// the fuzz target sends no packets off the machine.
var errOffHost = errors.New("not connecting off this host in a test")

// oracle says why connecting to an address reaches something private, or "".
// It is written from netip's predicates, the RFCs' byte layouts and this
// host's own interface addresses, not from the guard's table; it is less
// strict than the guard (which also refuses documentation, benchmarking and
// deprecated ranges), never more.
type oracle struct{ local map[netip.Addr]bool }

func newOracle(t testing.TB) oracle {
	o := oracle{local: map[netip.Addr]bool{}}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ip, _ := netip.AddrFromSlice(n.IP)
			o.local[ip.Unmap()] = true
		}
	}
	return o
}

func (o oracle) private(a netip.Addr) string {
	if a.Zone() != "" {
		return "zoned: scoped to one of this host's interfaces"
	}
	a = a.Unmap()
	switch {
	case o.local[a]:
		return "an address of this host"
	case a.IsLoopback() || a.IsUnspecified():
		return "loopback or unspecified"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast() || a.IsMulticast():
		return "link-local or multicast"
	case !a.IsGlobalUnicast():
		return "not global unicast"
	case a.Is4() && a.As4()[0] == 100 && a.As4()[1]&0xc0 == 64:
		return "carrier-grade NAT"
	}
	for _, v4 := range carried(a) {
		if why := o.private(v4); why != "" {
			return "carries " + v4.String() + ", " + why
		}
	}
	return ""
}

// carried returns the IPv4 addresses an IPv6 address carries, read from the
// byte layouts of IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d),
// IPv4-translated (::ffff:0:a.b.c.d), 6to4 (2002:aabb:ccdd::) and Teredo
// (2001:0:server:…:^client) addresses.
func carried(a netip.Addr) []netip.Addr {
	if !a.Is6() {
		return nil
	}
	b := a.As16()
	at := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}) }
	zero := func(bs []byte) bool { return strings.Trim(string(bs), "\x00") == "" }
	switch {
	case zero(b[:12]):
		return []netip.Addr{at(12)}
	case string(b[:4]) == "\x00\x64\xff\x9b" && zero(b[4:12]):
		return []netip.Addr{at(12)}
	case zero(b[:8]) && b[8] == 0xff && b[9] == 0xff && zero(b[10:12]):
		return []netip.Addr{at(12)}
	case b[0] == 0x20 && b[1] == 0x02:
		return []netip.Addr{at(2)}
	case string(b[:4]) == "\x20\x01\x00\x00":
		return []netip.Addr{at(4), netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})}
	}
	return nil
}

// FuzzGuard: nothing the guard accepts connects to a private address. PORT in
// a URL is the port of a listener on every address of this host. For each URL:
//   - whatever CheckURL says, a request through the guard's dialer (as the
//     deliverer sends it: no proxy, redirects not followed) is refused before
//     it connects anywhere the oracle calls private — the dialer must hold on
//     its own, as after DNS rebinding;
//   - when CheckURL accepts the URL, every address Go's transport would dial
//     for it (recorded by an unguarded dialer that then connects nowhere) is
//     one the oracle calls public: what was checked is what is dialled;
//   - the listener never sees a connection.
//
// Addresses the oracle calls public are never connected to (errOffHost).
// Seeded from testdata/hostile-urls.txt and a few URLs the guard accepts.
func FuzzGuard(f *testing.F) {
	for _, h := range netguardtest.HostileURLs(f, "PORT") {
		f.Add(h.URL)
	}
	for _, s := range []string{"http://93.184.216.34:PORT/", "https://[2606:4700:4700::1111]:PORT/x", "http://[64:ff9b::808:808]:PORT/",
		"http://[2002:808:808::1]:PORT/", "http://[::ffff:8.8.8.8]:PORT/", "http://8.8.8.8:PORT/#@127.0.0.1", "http://example.com:PORT/"} {
		f.Add(s)
	}
	wire := netguardtest.NewTripwire(f)
	o := newOracle(f)
	g := &Guard{Resolver: noDNS}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 512 {
			return // host tricks are short; long inputs only slow minimizing down
		}
		s = strings.ReplaceAll(s, "PORT", wire.Port())
		if u, err := url.Parse(s); err != nil || u.Host == "" {
			return // nothing dials it, and CheckURL refuses it (TestCheckURL)
		}
		before := len(wire.Hits())
		if addr := guardedDial(t, g, o, s); addr != "" {
			t.Errorf("the guard's dialer connected %q to %s (%s)", s, addr, o.private(netip.MustParseAddrPort(addr).Addr()))
		}
		if g.CheckURL(context.Background(), s) == nil {
			for _, addr := range transportDials(s) {
				if why := o.private(addr.Addr()); why != "" {
					t.Errorf("CheckURL accepted %q, which Go's transport dials at %s (%s)", s, addr, why)
				}
			}
		}
		if hits := wire.Hits(); len(hits) > before {
			t.Errorf("%q reached the listener on this host: %v", s, hits[before:])
		}
	})
}

// guardedDial sends s through the guard's dialer and returns an address the
// guard let through to a private address, or "".
func guardedDial(t *testing.T, g *Guard, o oracle, s string) string {
	var leaked string
	d := g.Dialer(time.Second)
	check := d.Control
	d.Control = func(network, address string, c syscall.RawConn) error {
		if err := check(network, address, c); err != nil {
			return err
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			t.Errorf("the guard let %q dial %q, which is no address", s, address)
			return err
		}
		if o.private(ap.Addr()) == "" {
			return errOffHost
		}
		leaked = address // connect: the listener shows it was real
		return nil
	}
	send(s, d)
	return leaked
}

// transportDials returns the addresses Go's transport would connect to for s.
func transportDials(s string) []netip.AddrPort {
	var dialled []netip.AddrPort
	d := &net.Dialer{Timeout: time.Second, Resolver: noDNS, Control: func(network, address string, _ syscall.RawConn) error {
		if ap, err := netip.ParseAddrPort(address); err == nil {
			dialled = append(dialled, ap)
		}
		return errOffHost
	}}
	send(s, d)
	return dialled
}

// send POSTs to s as the deliverer does: no proxy, no redirects followed.
func send(s string, d *net.Dialer) {
	req, err := http.NewRequest("POST", s, strings.NewReader("{}"))
	if err != nil {
		return
	}
	tr := &http.Transport{Proxy: nil, DialContext: d.DialContext, ForceAttemptHTTP2: true, TLSHandshakeTimeout: time.Second}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 2 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
}
