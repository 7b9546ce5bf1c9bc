// Package netguard keeps outbound calls to user-supplied URLs (webhooks,
// callbacks) away from addresses users must not reach: loopback, private
// networks, link-local (cloud metadata services live there), carrier-grade NAT,
// multicast and the like. The check runs on the IP actually being connected to,
// after DNS resolution, so a name that resolves somewhere harmless when it is
// registered and somewhere private later (DNS rebinding) is still refused.
//
// An address is refused when it carries an IPv6 zone id (%eth0: it would pick
// one of this host's interfaces, and no prefix contains a zoned address), when
// it is in a blocked network (networks.go) that is not allowed, or when it is
// an IPv6 form that carries an IPv4 address (NAT64, 6to4, Teredo,
// IPv4-translated) and that IPv4 address is refused. IPv4-mapped addresses are
// checked as the IPv4 address they map; IPv4-compatible ones (::/96) are
// refused whatever they carry.
package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/errandhq/errand"
)

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
// webhooks.allow_private, e.g. 127.0.0.0/8 for local development). An
// IPv4-mapped prefix (::ffff:10.0.0.0/104) allows the IPv4 prefix it maps.
func New(allow []string) (*Guard, error) {
	g := &Guard{}
	for _, a := range allow {
		p, err := netip.ParsePrefix(strings.TrimSpace(a))
		if err != nil {
			return nil, fmt.Errorf("allow %q: not a CIDR prefix like 127.0.0.0/8", a)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		g.allow = append(g.allow, p.Masked())
	}
	return g, nil
}

// allows reports whether ip (unzoned, unmapped) is in an allowed prefix.
func (g *Guard) allows(ip netip.Addr) bool {
	for _, p := range g.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// CheckIP refuses an address with a zone id, an address in a blocked network
// that is not allowed, and an IPv6 address that is not allowed and carries an
// IPv4 address in a blocked network.
func (g *Guard) CheckIP(ip netip.Addr) error {
	if zone := ip.Zone(); zone != "" {
		return errand.Errorf(errand.EVALIDATION,
			"%s has an IPv6 zone id (%%%s), which would pick one of this host's network interfaces: outbound calls may not carry one",
			ip, zone)
	}
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if g.allows(ip) {
		return nil
	}
	if n, ok := blockedBy(ip); ok {
		return errand.Errorf(errand.EVALIDATION, "%s is in %s (%s), which outbound calls may not reach", ip, n.prefix, n.name)
	}
	for _, e := range embeddings(ip) {
		// The allow list names what may be dialled: allowing 127.0.0.0/8
		// does not allow NAT64 or 6to4 of it (allow 64:ff9b::7f00:0/104 for that).
		if n, ok := blockedBy(e.ipv4); ok {
			return errand.Errorf(errand.EVALIDATION, "%s embeds %s (%s), which is in %s (%s): outbound calls may not reach it",
				ip, e.ipv4, e.form, n.prefix, n.name)
		}
	}
	return nil
}

// ErrRefused is wrapped by dial errors for blocked addresses.
var ErrRefused = errors.New("refused by the outbound address guard")

// Dialer returns a dialer that refuses blocked addresses at connect time, for
// an http.Transport's DialContext. Its Control hook sees the address the
// kernel is asked to connect to, zone id included, whatever name or spelling
// led there.
func (g *Guard) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Resolver: g.Resolver,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s is not an IP address and port", ErrRefused, address)
			}
			if err := g.CheckIP(ap.Addr()); err != nil {
				return fmt.Errorf("%w: %v", ErrRefused, errand.ErrorMessage(err))
			}
			return nil
		}}
}
