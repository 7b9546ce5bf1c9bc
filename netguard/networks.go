package netguard

import "net/netip"

// network is a blocked prefix and what it is, for the refusal's message.
type network struct {
	prefix netip.Prefix
	name   string
}

// blocked are the networks refused unless allowed. An address is refused for
// the first that contains it, so more specific prefixes come first.
var blocked = networks(
	"0.0.0.0/8", "this network",
	"10.0.0.0/8", "private",
	"100.64.0.0/10", "carrier-grade NAT",
	"127.0.0.0/8", "loopback",
	"169.254.0.0/16", "link-local, cloud metadata",
	"172.16.0.0/12", "private",
	"192.0.0.0/24", "IETF protocol assignments",
	"192.0.2.0/24", "documentation",
	"192.88.99.0/24", "6to4 relay anycast, deprecated",
	"192.168.0.0/16", "private",
	"198.18.0.0/15", "benchmarking",
	"198.51.100.0/24", "documentation",
	"203.0.113.0/24", "documentation",
	"224.0.0.0/4", "multicast",
	"240.0.0.0/4", "reserved, broadcast",
	"::/128", "unspecified",
	"::1/128", "loopback",
	"::/96", "IPv4-compatible, deprecated",
	"64:ff9b:1::/48", "local-use NAT64",
	"100::/64", "discard",
	"2001:2::/48", "benchmarking",
	"2001:db8::/32", "documentation",
	"3fff::/20", "documentation",
	"5f00::/16", "SRv6 segment identifiers",
	"fc00::/7", "unique local", // fd00:ec2::254 is a metadata address
	"fe80::/10", "link-local",
	"ff00::/8", "multicast",
)

func networks(ss ...string) []network {
	out := make([]network, 0, len(ss)/2)
	for i := 0; i+1 < len(ss); i += 2 {
		out = append(out, network{netip.MustParsePrefix(ss[i]), ss[i+1]})
	}
	return out
}

// blockedBy returns the blocked network that contains ip (unzoned, unmapped).
func blockedBy(ip netip.Addr) (network, bool) {
	for _, n := range blocked {
		if n.prefix.Contains(ip) {
			return n, true
		}
	}
	return network{}, false
}

// embedding is an IPv4 address carried inside an IPv6 one.
type embedding struct {
	form string
	ipv4 netip.Addr
}

// IPv6 forms that carry an IPv4 address a connection may end up reaching.
// IPv4-mapped addresses (::ffff:0:0/96) are unmapped before any check, and
// IPv4-compatible ones (::/96) are blocked whatever they carry.
var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052: the last 32 bits
	translated = netip.MustParsePrefix("::ffff:0:0:0/96") // RFC 2765 (SIIT): the last 32 bits
	sixToFour  = netip.MustParsePrefix("2002::/16")       // RFC 3056: bits 16-47
	teredo     = netip.MustParsePrefix("2001::/32")       // RFC 4380: server in bits 32-63, client inverted in the last 32
)

// embeddings returns the IPv4 addresses an IPv6 address carries, if any.
func embeddings(ip netip.Addr) []embedding {
	if !ip.Is6() {
		return nil
	}
	b := ip.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte(b[i : i+4])) }
	switch {
	case nat64.Contains(ip):
		return []embedding{{"NAT64", v4(12)}}
	case translated.Contains(ip):
		return []embedding{{"IPv4-translated", v4(12)}}
	case sixToFour.Contains(ip):
		return []embedding{{"6to4", v4(2)}}
	case teredo.Contains(ip):
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return []embedding{{"Teredo server", v4(4)}, {"Teredo client", netip.AddrFrom4(client)}}
	}
	return nil
}
