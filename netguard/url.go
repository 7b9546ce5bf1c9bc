package netguard

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand"
)

// MaxURL is the longest URL CheckURL accepts, in bytes.
const MaxURL = 2048

// loopbackNames are the addresses a localhost name stands for (RFC 6761).
var loopbackNames = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}

// CheckURL checks a URL before it is saved: http or https, a host, no
// credentials, a host that every parser reads alike, and (where the name
// resolves now) no refused address. Refused as ambiguous: IPv6 zone ids,
// percent-encoded and non-ASCII hosts (Go's transport maps Unicode hosts with
// IDNA), and hosts that end in a number but are not four decimal numbers
// (2130706433, 0x7f.1, 0177.0.0.1, 127.1, 127.0.0.1.: inet_aton-based
// resolvers and browsers read them as IPv4). localhost and *.localhost stand
// for 127.0.0.1 and ::1 whatever DNS says. The connection is checked again
// when it is made.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := parseURL(raw)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if err := checkSpelling(host); err != nil {
		return err
	}
	if strings.Contains(host, ":") { // only an IPv6 literal has one
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return errand.Errorf(errand.EVALIDATION, "the host %q is not an IPv6 address", host)
		}
		return g.CheckIP(ip)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return g.CheckIP(ip)
	}
	if isLocalhost(host) {
		return g.checkAll(host, "is a localhost name (RFC 6761) for", loopbackNames)
	}
	return g.checkResolved(ctx, host)
}

// parseURL parses a URL and checks its scheme, host and userinfo.
func parseURL(raw string) (*url.URL, error) {
	if len(raw) > MaxURL {
		return nil, errand.Errorf(errand.EVALIDATION, "not a URL of at most %d bytes", MaxURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, errand.Errorf(errand.EVALIDATION, "not a URL: %s", strings.TrimPrefix(err.Error(), "net/url: "))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errand.Errorf(errand.EVALIDATION, "the URL must be http:// or https://, not %q", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return nil, errand.Errorf(errand.EVALIDATION, "the URL has no host")
	case u.User != nil:
		return nil, errand.Errorf(errand.EVALIDATION, "the URL must not carry credentials")
	}
	return u, nil
}

// checkSpelling refuses a host (as url.URL.Hostname returns it) that the URL
// parser, the transport and resolvers may read differently.
func checkSpelling(host string) error {
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return errand.Errorf(errand.EVALIDATION, "the host %q is not ASCII: write an internationalized name in its ASCII form (xn--…)", host)
		}
	}
	if strings.Contains(host, ":") {
		return nil // an IPv6 literal: netip reads it, zone id and all
	}
	if strings.Contains(host, "%") {
		return errand.Errorf(errand.EVALIDATION, "the host %q is percent-encoded, which outbound calls may not be", host)
	}
	if !endsInNumber(host) {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		return nil // four decimal numbers
	}
	if ip, ok := parseIPv4(host); ok {
		return errand.Errorf(errand.EVALIDATION,
			"the host %q is an IPv4 address in a non-standard spelling (it means %s); write it as four decimal numbers like 93.184.216.34", host, ip)
	}
	return errand.Errorf(errand.EVALIDATION, "the host %q ends in a number but is not an IPv4 address of four decimal numbers", host)
}

// isLocalhost reports whether a name is localhost or under it (RFC 6761).
func isLocalhost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// checkResolved resolves a name (for at most 5 seconds) and checks every address.
func (g *Guard) checkResolved(ctx context.Context, host string) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := g.resolver().LookupNetIP(rctx, "ip", host)
	if err != nil {
		return errand.Errorf(errand.EVALIDATION, "cannot resolve %q: %v", host, err)
	}
	return g.checkAll(host, "resolves to", addrs)
}

// checkAll checks each address a name stands for.
func (g *Guard) checkAll(host, says string, addrs []netip.Addr) error {
	for _, ip := range addrs {
		if err := g.CheckIP(ip); err != nil {
			return errand.Errorf(errand.EVALIDATION, "%q %s %s: %s", host, says, ip, errand.ErrorMessage(err))
		}
	}
	return nil
}

// endsInNumber reports whether a host's last label (after one trailing dot)
// is a number, decimal or 0x-hexadecimal: the WHATWG URL standard then reads
// the host as an IPv4 address, as inet_aton does.
func endsInNumber(host string) bool {
	labels := strings.Split(host, ".")
	if len(labels) > 1 && labels[len(labels)-1] == "" {
		labels = labels[:len(labels)-1]
	}
	last := labels[len(labels)-1]
	if len(last) >= 2 && (last[:2] == "0x" || last[:2] == "0X") {
		return isNumber(last[2:], 16)
	}
	return last != "" && isNumber(last, 10)
}

// isNumber reports whether s is only digits of the base ("" is, for 0x).
func isNumber(s string, base int) bool {
	for _, c := range strings.ToLower(s) {
		if !(c >= '0' && c <= '9' || base == 16 && c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// parseIPv4 reads a host as the WHATWG URL standard's IPv4 parser (and
// inet_aton) do: one to four parts, each decimal, octal (a leading 0) or
// hexadecimal (0x); the last part fills the remaining bytes; one trailing dot
// is ignored.
func parseIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var n [4]uint64
	for i, p := range parts {
		v, ok := parseIPv4Part(p)
		if !ok || i < len(parts)-1 && v > 255 {
			return netip.Addr{}, false
		}
		n[i] = v
	}
	last := n[len(parts)-1]
	if last >= 1<<(8*(5-len(parts))) {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i := 0; i < len(parts)-1; i++ {
		b[i] = byte(n[i])
	}
	for i := 3; i >= len(parts)-1; i-- {
		b[i], last = byte(last), last>>8
	}
	return netip.AddrFrom4(b), true
}

// parseIPv4Part reads one part of an IPv4 address: 0x hexadecimal (0x alone
// is 0), 0 octal, or decimal.
func parseIPv4Part(p string) (uint64, bool) {
	base := 10
	switch {
	case len(p) >= 2 && (p[:2] == "0x" || p[:2] == "0X"):
		p, base = p[2:], 16
		if p == "" {
			return 0, true
		}
	case len(p) >= 2 && p[0] == '0':
		p, base = p[1:], 8
	}
	v, err := strconv.ParseUint(p, base, 32)
	return v, err == nil
}
