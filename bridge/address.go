package bridge

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// The brokers a bridge speaks to, as their URL schemes name them.
const (
	NATS  = "nats"
	AMQP  = "amqp"
	MQTT  = "mqtt"
	Kafka = "kafka"
)

// schemes maps a URL scheme to its broker and whether it means TLS.
var schemes = map[string]struct {
	broker string
	tls    bool
	port   string
}{
	"nats": {NATS, false, "4222"}, "amqp": {AMQP, false, "5672"}, "amqps": {AMQP, true, "5671"},
	"mqtt": {MQTT, false, "1883"}, "mqtts": {MQTT, true, "8883"}, "kafka": {Kafka, false, "9092"},
}

// Endpoint is a bridge's parsed url.
type Endpoint struct {
	Scheme string
	// Broker is NATS, AMQP, MQTT or Kafka.
	Broker string
	// Hosts are host:port, a default port filled in; NATS and Kafka take
	// several (kafka://a:9092,b:9092), AMQP and MQTT one.
	Hosts []string
	// User and Password come from the URL's user info ("" when none).
	User, Password string
	// Path is what follows the hosts without its leading "/" (AMQP: the
	// virtual host, URL-decoded).
	Path string
	// TLS is set by a secure scheme (amqps, mqtts).
	TLS bool
}

// ParseURL reads a bridge url: nats://, amqp://, amqps://, mqtt://, mqtts://
// or kafka://host:port[,host:port…].
func ParseURL(raw string) (*Endpoint, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	s, known := schemes[strings.ToLower(scheme)]
	if !ok || !known {
		return nil, fmt.Errorf("%q is not a broker URL: use nats://, amqp://, amqps://, mqtt://, mqtts:// or kafka://", redactURL(raw))
	}
	e := &Endpoint{Scheme: strings.ToLower(scheme), Broker: s.broker, TLS: s.tls}
	if strings.ContainsAny(rest, "?#") {
		return nil, fmt.Errorf("%s: put options in the bridge's keys, not in the URL's query", redactURL(raw))
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		info := hosts[:at]
		hosts = hosts[at+1:]
		u, p, _ := strings.Cut(info, ":")
		var err error
		if e.User, err = url.PathUnescape(u); err == nil {
			e.Password, err = url.PathUnescape(p)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: the user info is not URL-encoded", redactURL(raw))
		}
	}
	p, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("%s: the path is not URL-encoded", redactURL(raw))
	}
	e.Path = p
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return nil, fmt.Errorf("%s: name a host (host:port)", redactURL(raw))
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), s.port)
		}
		if host, port, err := net.SplitHostPort(h); err != nil || host == "" || !digits.MatchString(port) {
			return nil, fmt.Errorf("%s: %q is not host:port", redactURL(raw), h)
		}
		e.Hosts = append(e.Hosts, h)
	}
	if len(e.Hosts) > 1 && (e.Broker == AMQP || e.Broker == MQTT) {
		return nil, fmt.Errorf("%s: %s takes one host", redactURL(raw), e.Broker)
	}
	return e, nil
}

var digits = regexp.MustCompile(`^[0-9]{1,5}$`)

// redactURL hides a URL's password.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	hosts, path, slash := strings.Cut(rest, "/")
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		u, _, hasPass := strings.Cut(hosts[:at], ":")
		if hasPass {
			u += ":xxxxx"
		}
		hosts = u + "@" + hosts[at+1:]
	}
	if slash {
		hosts += "/" + path
	}
	return scheme + "://" + hosts
}

// String is the URL without its password, for status and logs.
func (e *Endpoint) String() string {
	auth := ""
	if e.User != "" {
		auth = url.PathEscape(e.User) + "@"
	}
	out := e.Scheme + "://" + auth + strings.Join(e.Hosts, ",")
	if e.Path != "" {
		out += "/" + url.PathEscape(e.Path)
	}
	return out
}

// Address rules per broker: what a route's to: may render to and what its
// from: may name.
var (
	natsToken   = regexp.MustCompile(`^[^\s.*>]+$`)
	kafkaTopic  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)
	amqpName    = regexp.MustCompile(`^[^\x00-\x1f]{0,255}$`)
	kafkaUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]`)
)

// checkTo says what is wrong with the literal parts of a publish route's
// rendered address, or "". Placeholders stand for "x".
func checkTo(broker, addr string) string {
	switch broker {
	case NATS:
		for _, tok := range strings.Split(addr, ".") {
			if !natsToken.MatchString(tok) {
				return "a NATS subject is '.'-separated tokens without spaces, '*' or '>' (publish to one subject)"
			}
		}
	case MQTT:
		if addr == "" || strings.ContainsAny(addr, "+#\x00") || strings.HasPrefix(addr, "$") {
			return "an MQTT topic is not empty, has no '+' or '#' (publish to one topic) and does not start with '$'"
		}
	case AMQP:
		ex, key, _ := strings.Cut(addr, "/")
		if !amqpName.MatchString(ex) || !amqpName.MatchString(key) {
			return "an AMQP address is exchange/routing-key (or a queue name on the default exchange), each at most 255 characters"
		}
	case Kafka:
		if !kafkaTopic.MatchString(addr) {
			return "a Kafka topic is 1 to 249 of A-Z a-z 0-9 . _ -"
		}
	}
	return ""
}

// checkFrom says what is wrong with a subscribe route's from:, or "".
func checkFrom(broker, from string) string {
	switch broker {
	case NATS:
		toks := strings.Split(from, ".")
		for i, tok := range toks {
			if tok == "*" || (tok == ">" && i == len(toks)-1) {
				continue
			}
			if !natsToken.MatchString(tok) {
				return "a NATS subject is '.'-separated tokens; '*' is one token, a final '>' the rest"
			}
		}
	case MQTT:
		levels := strings.Split(from, "/")
		for i, l := range levels {
			if (l == "#" && i != len(levels)-1) || (l != "#" && l != "+" && strings.ContainsAny(l, "+#")) {
				return "an MQTT topic filter has '+' as a whole level and '#' only as the last"
			}
		}
		if from == "" || strings.HasPrefix(from, "$share/") || strings.Contains(from, "\x00") {
			return "an MQTT topic filter is not empty and not $share/… (errand shares its subscriptions itself: see group)"
		}
	case AMQP:
		if from == "" || !amqpName.MatchString(from) {
			return "an AMQP queue name is 1 to 255 characters"
		}
	case Kafka:
		if !kafkaTopic.MatchString(from) {
			return "a Kafka topic is 1 to 249 of A-Z a-z 0-9 . _ -"
		}
	}
	return ""
}

// cleanValue makes a placeholder's value safe in a broker's address: Kafka
// topics take no ':' (event types may have one), so it becomes '_'.
func cleanValue(broker, v string) string {
	if broker == Kafka {
		return kafkaUnsafe.ReplaceAllString(v, "_")
	}
	return v
}
