// Package netguard keeps outbound calls to user-supplied URLs (webhooks,
// callbacks) away from addresses users must not reach: loopback, private
// networks, link-local (cloud metadata services live there), carrier-grade NAT,
// multicast and the like. The check runs on the IP actually being connected to,
// after DNS resolution, so a name that resolves somewhere harmless when it is
// registered and somewhere private later (DNS rebinding) is still refused.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/errandhq/errand"
)

// blocked are the networks refused unless allowed.
var blocked = mustPrefixes(
	"0.0.0.0/8",       // "this network"
	"10.0.0.0/8",      // private
	"100.64.0.0/10",   // carrier-grade NAT
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local, cloud metadata (169.254.169.254)
	"172.16.0.0/12",   // private
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation
	"192.168.0.0/16",  // private
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // documentation
	"203.0.113.0/24",  // documentation
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, broadcast
	"::/128",          // unspecified
	"::1/128",         // loopback
	"64:ff9b::/96",    // NAT64 (reaches IPv4 space)
	"64:ff9b:1::/48",  // local NAT64
	"100::/64",        // discard
	"2001:db8::/32",   // documentation
	"fc00::/7",        // unique local (fd00:ec2::254 is a metadata address)
	"fe80::/10",       // link-local
	"ff00::/8",        // multicast
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Guard decides which addresses outbound calls may reach. The zero value refuses
// every blocked network.
type Guard struct {
	allow []netip.Prefix
	// Resolver looks names up, for CheckURL and the dialer. Defaults to the
	// system's (net.DefaultResolver).
	Resolver *net.Resolver
}

func (g *Guard) resolver() *net.Resolver {
	if g.Resolver != nil {
		return g.Resolver
	}
	return net.DefaultResolver
}

// New returns a guard that also allows the given CIDR prefixes (the config's
// webhooks.allow_private, e.g. 127.0.0.0/8 for local development).
func New(allow []string) (*Guard, error) {
	g := &Guard{}
	for _, a := range allow {
		p, err := netip.ParsePrefix(strings.TrimSpace(a))
		if err != nil {
			return nil, fmt.Errorf("allow %q: not a CIDR prefix like 127.0.0.0/8", a)
		}
		g.allow = append(g.allow, p.Masked())
	}
	return g, nil
}

// CheckIP refuses an address in a blocked network that is not allowed.
func (g *Guard) CheckIP(ip netip.Addr) error {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	for _, p := range g.allow {
		if p.Contains(ip) {
			return nil
		}
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return errand.Errorf(errand.EVALIDATION, "%s is in %s, which outbound calls may not reach", ip, p)
		}
	}
	return nil
}

// CheckURL checks a URL before it is saved: http or https, a host, no
// credentials, and (where the name resolves now) no blocked address. The
// connection is checked again when it is made.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || len(raw) > 2048:
		return errand.Errorf(errand.EVALIDATION, "not a URL of at most 2048 bytes")
	case u.Scheme != "http" && u.Scheme != "https":
		return errand.Errorf(errand.EVALIDATION, "the URL must be http:// or https://, not %q", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return errand.Errorf(errand.EVALIDATION, "the URL has no host")
	case u.User != nil:
		return errand.Errorf(errand.EVALIDATION, "the URL must not carry credentials")
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		return g.CheckIP(ip)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := g.resolver().LookupNetIP(rctx, "ip", host)
	if err != nil {
		return errand.Errorf(errand.EVALIDATION, "cannot resolve %q: %v", host, err)
	}
	for _, ip := range addrs {
		if err := g.CheckIP(ip); err != nil {
			return err
		}
	}
	return nil
}

// ErrRefused is wrapped by dial errors for blocked addresses.
var ErrRefused = errors.New("refused by the outbound address guard")

// Dialer returns a dialer that refuses blocked addresses at connect time, for
// an http.Transport's DialContext.
func (g *Guard) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Resolver: g.Resolver,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrRefused, address)
			}
			if err := g.CheckIP(ap.Addr()); err != nil {
				return fmt.Errorf("%w: %v", ErrRefused, errand.ErrorMessage(err))
			}
			return nil
		}}
}
