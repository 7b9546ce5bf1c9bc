package bridge

import (
	"cmp"
	"errors"
	"fmt"
	"github.com/errandhq/errand"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/webhook"
)

// Defaults of a bridge's knobs.
const (
	// DefaultTenant is the tenant a bridge acts in when its config names none
	// (the development principal's).
	DefaultTenant = "default"
	// DefaultDedupWindow is how long a message id taken from a broker is
	// remembered, so that a redelivery within it is not taken again.
	DefaultDedupWindow = 24 * time.Hour
	// DefaultHashWindow is how long the hash of a message without an id is
	// remembered (a redelivery is recognised by it only while the broker
	// marks it redelivered: MQTT DUP, AMQP redelivered).
	DefaultHashWindow = 10 * time.Minute
	// DefaultMaxMessageBytes is the largest message payload taken from a broker.
	DefaultMaxMessageBytes = 1 << 20
	// DefaultBatch is how many events a publish route reads and sends at once,
	// and how many messages a subscription commits in one transaction.
	DefaultBatch = 256
	// DefaultSessionExpiry is how long an MQTT broker keeps errand's session
	// (and the QoS 1 messages for it) while errand is away.
	DefaultSessionExpiry = time.Hour
	// DefaultEventType is the type of a channel event made from a message that
	// names none.
	DefaultEventType = "message"
)

// Config is one bridge: a broker connection and its routes.
type Config struct {
	// Name names the bridge (1 to 63 of a-z 0-9 _ -): its routes' cursors,
	// its principal (bridge:<name>), its status.
	Name string
	// URL is the broker: nats://, amqp(s)://, mqtt(s)://, kafka://host:port[,…].
	URL string
	// Tenant is the tenant the bridge acts in: it publishes that tenant's
	// events and appends and submits in it. Defaults to "default".
	Tenant  string
	Options Options
	// Publish routes carry events from errand to the broker.
	Publish []Publish
	// Subscribe routes carry messages from the broker into errand.
	Subscribe []Subscribe
	// DedupWindow defaults to DefaultDedupWindow; HashWindow to DefaultHashWindow.
	DedupWindow, HashWindow time.Duration
	// MaxMessageBytes defaults to DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Batch defaults to DefaultBatch.
	Batch int
}

// Options are what some brokers take beyond the URL.
type Options struct {
	// Username and Password authenticate (they win over the URL's user info).
	Username, Password string
	// ClientID names errand's connection: the MQTT client id (one per node,
	// stable across restarts so that the broker keeps its session: defaults to
	// errand-<bridge>-<hostname>), the Kafka client id, the NATS connection name.
	ClientID string
	// Group is how errand's nodes share a subscription: NATS queue group,
	// MQTT shared subscription ($share/<group>/…), Kafka consumer group.
	// Defaults to errand-<bridge>. AMQP queues are shared by their consumers.
	Group string
	// QoS is the MQTT QoS of what errand publishes and subscribes with: 1
	// (the default) or 2.
	QoS int
	// SessionExpiry is the MQTT session expiry. Defaults to 1h.
	SessionExpiry time.Duration
	// SASL is Kafka's mechanism with Username and Password: plain,
	// scram-sha-256 or scram-sha-512.
	SASL string
	TLS  TLS
}

// TLS configures a TLS connection (always on for amqps:// and mqtts://).
type TLS struct {
	Enabled            bool
	CAFile             string
	CertFile, KeyFile  string
	ServerName         string
	InsecureSkipVerify bool
}

// Publish is one route from errand to the broker.
type Publish struct {
	// Name keeps the route's cursor across edits of the config. Defaults to
	// the route's position ("0", "1", …).
	Name string
	// Events are webhook filters: job.succeeded, job.*, operation:<glob>,
	// channel:<pattern>. None selects every event of the tenant.
	Events []string
	// To is the address with placeholders: a NATS subject, an MQTT topic,
	// exchange/routing-key for AMQP, a Kafka topic.
	To string
}

// Subscribe is one route from the broker into errand.
type Subscribe struct {
	// Name scopes the route's de-duplication records. Defaults to its position.
	Name string
	// From is a NATS subject (with * and >), an MQTT topic filter (with +
	// and #), an AMQP queue, a Kafka topic.
	From string
	// To is channel:<name> (append each message to the channel) or
	// jobs:<operation> (submit each message's payload as a job's input).
	To string
	// Type is the type of the channel events made from messages that do not
	// carry one. Defaults to "message".
	Type string
	// Stream, for NATS, consumes through this JetStream stream with a durable
	// consumer (acked after commit) instead of a core subscription.
	Stream string
	// Durable names the JetStream consumer. Defaults to errand-<bridge>-<route>.
	Durable string
	// Group overrides the bridge's Options.Group for this route.
	Group string
}

// Declared is what a bridge's routes may name: is a channel declared, is an
// operation.
type Declared struct {
	Channel   func(name string) bool
	Operation func(name string) bool
}

// Problem is one thing wrong with a bridge's config: the key path under the
// bridge (["publish", "0", "to"]) and what is wrong.
type Problem struct {
	Path    []string
	Message string
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Check says what is wrong with c, key by key.
func (c *Config) Check(d Declared) []Problem {
	var out []Problem
	bad := func(msg string, path ...string) { out = append(out, Problem{path, msg}) }
	if !nameRe.MatchString(c.Name) {
		bad("a bridge's name is 1 to 63 of a-z 0-9 _ - (starting with a letter or digit)", "name")
	}
	ep, err := ParseURL(c.URL)
	if err != nil {
		bad(err.Error(), "url")
		return out
	}
	out = append(out, c.checkOptions(ep)...)
	names := map[string]bool{}
	for i, p := range c.Publish {
		at := func(k ...string) []string { return append([]string{"publish", strconv.Itoa(i)}, k...) }
		out = append(out, checkRouteName(p.Name, i, names, "publish", at("name"))...)
		f, err := webhook.ParseFilter(p.Events)
		_ = f
		if err != nil {
			for _, fe := range fieldErrors(err) {
				path := at("events")
				if n, ok := strings.CutPrefix(fe.Pointer, "/events/"); ok {
					path = append(path, n)
				}
				out = append(out, Problem{path, fe.Message})
			}
		}
		out = append(out, checkTemplate(ep.Broker, p, at("to"))...)
	}
	names = map[string]bool{}
	for i, s := range c.Subscribe {
		at := func(k ...string) []string { return append([]string{"subscribe", strconv.Itoa(i)}, k...) }
		out = append(out, checkRouteName(s.Name, i, names, "subscribe", at("name"))...)
		if msg := checkFrom(ep.Broker, s.From); msg != "" {
			bad(msg, at("from")...)
		}
		out = append(out, checkTarget(s, d, at)...)
		if (s.Stream != "" || s.Durable != "") && ep.Broker != NATS {
			bad("stream and durable are for NATS JetStream", at("stream")...)
		}
		if s.Durable != "" && s.Stream == "" {
			bad("a durable consumer needs its stream", at("durable")...)
		}
		for k, v := range map[string]string{"stream": s.Stream, "durable": s.Durable} {
			if v != "" && !natsToken.MatchString(v) {
				bad("a JetStream name has no spaces, '.', '*' or '>'", at(k)...)
			}
		}
	}
	return out
}

func (c *Config) checkOptions(ep *Endpoint) []Problem {
	var out []Problem
	bad := func(msg string, path ...string) { out = append(out, Problem{path, msg}) }
	o := c.Options
	if c.Tenant != "" && (len(c.Tenant) > 200 || strings.ContainsAny(c.Tenant, "\x00\n\r")) {
		bad("a tenant is 1 to 200 characters of text", "tenant")
	}
	if o.QoS != 0 && (ep.Broker != MQTT || o.QoS < 1 || o.QoS > 2) {
		bad("qos is MQTT's, 1 or 2 (QoS 0 could lose messages)", "qos")
	}
	if o.SessionExpiry < 0 || (o.SessionExpiry != 0 && ep.Broker != MQTT) {
		bad("session_expiry is MQTT's, and not negative", "session_expiry")
	}
	if o.SASL != "" && (ep.Broker != Kafka || !contains([]string{"plain", "scram-sha-256", "scram-sha-512"}, o.SASL)) {
		bad("sasl is Kafka's: plain, scram-sha-256 or scram-sha-512", "sasl")
	}
	if o.SASL != "" && cmp.Or(o.Username, ep.User) == "" {
		bad("sasl needs a username and password", "sasl")
	}
	if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
		bad("give both cert_file and key_file, or neither", "tls", "cert_file")
	}
	if c.DedupWindow < 0 || c.HashWindow < 0 || (c.DedupWindow > 0 && c.DedupWindow < time.Minute) {
		bad("the de-duplication window is at least 1m", "dedup_window")
	}
	if c.MaxMessageBytes < 0 || c.MaxMessageBytes > 64<<20 {
		bad("must be between 1 and 67108864", "max_message_bytes")
	}
	if c.Batch < 0 || c.Batch > 1000 {
		bad("must be between 1 and 1000", "batch")
	}
	if len(c.Publish) == 0 && len(c.Subscribe) == 0 {
		bad("a bridge needs a publish or a subscribe route", "publish")
	}
	return out
}

func checkRouteName(name string, i int, names map[string]bool, kind string, at []string) []Problem {
	n := cmp.Or(name, strconv.Itoa(i))
	var out []Problem
	if name != "" && !nameRe.MatchString(name) {
		out = append(out, Problem{at, "a route's name is 1 to 63 of a-z 0-9 _ -"})
	}
	if names[n] {
		out = append(out, Problem{at, fmt.Sprintf("two %s routes are called %q", kind, n)})
	}
	names[n] = true
	return out
}

// checkTemplate checks a publish route's to: its placeholders, and that what
// it renders is an address the broker takes.
func checkTemplate(broker string, p Publish, at []string) []Problem {
	t, err := ParseTemplate(p.To)
	if err != nil {
		return []Problem{{at, err.Error()}}
	}
	jobs, chans := selects(p.Events)
	switch {
	case t.Uses(PhChannel) && jobs:
		return []Problem{{at, "{channel} is empty for job events, which events selects: select channels only (channel:<pattern>) or use {stream}"}}
	case t.Uses(PhOperation) && chans:
		return []Problem{{at, "{operation} is empty for channel events, which events selects: select job events only or use {stream}"}}
	}
	if msg := checkTo(broker, t.Render(func(string) string { return "x" })); msg != "" {
		return []Problem{{at, msg}}
	}
	return nil
}

// selects says whether filter entries select job (or endpoint) events and
// channel events: no entries select both.
func selects(events []string) (jobs, chans bool) {
	if len(events) == 0 {
		return true, true
	}
	for _, e := range events {
		if strings.HasPrefix(e, "channel:") {
			chans = true
		} else {
			jobs = true
		}
	}
	return jobs, chans
}

// checkTarget checks a subscribe route's to:.
func checkTarget(s Subscribe, d Declared, at func(...string) []string) []Problem {
	kind, name, _ := strings.Cut(s.To, ":")
	switch {
	case kind == "channel" && !channel.ValidName(name):
		return []Problem{{at("to"), fmt.Sprintf("%q is not a channel name (channel:<name>, no wildcards)", name)}}
	case kind == "channel" && d.Channel != nil && !d.Channel(name):
		return []Problem{{at("to"), fmt.Sprintf("channel %q is not declared under channels:", name)}}
	case kind == "jobs" && d.Operation != nil && !d.Operation(name):
		return []Problem{{at("to"), fmt.Sprintf("operation %q is not declared under operations:", name)}}
	case kind != "channel" && kind != "jobs":
		return []Problem{{at("to"), "to: is channel:<name> or jobs:<operation>"}}
	case s.Type != "" && (kind != "channel" || !channel.ValidType(s.Type)):
		return []Problem{{at("type"), "type is a channel route's event type: 1 to 100 of letters, digits, '.', '_', ':' or '-'"}}
	}
	return nil
}

// withDefaults fills c's unset knobs.
func (c Config) withDefaults() Config {
	c.Tenant = cmp.Or(c.Tenant, DefaultTenant)
	c.DedupWindow = cmp.Or(c.DedupWindow, DefaultDedupWindow)
	c.HashWindow = cmp.Or(c.HashWindow, DefaultHashWindow)
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, DefaultMaxMessageBytes)
	c.Batch = cmp.Or(c.Batch, DefaultBatch)
	c.Options.Group = cmp.Or(c.Options.Group, "errand-"+c.Name)
	c.Options.QoS = cmp.Or(c.Options.QoS, 1)
	c.Options.SessionExpiry = cmp.Or(c.Options.SessionExpiry, DefaultSessionExpiry)
	c.Publish = append([]Publish(nil), c.Publish...)
	for i := range c.Publish {
		c.Publish[i].Name = cmp.Or(c.Publish[i].Name, strconv.Itoa(i))
	}
	c.Subscribe = append([]Subscribe(nil), c.Subscribe...)
	for i := range c.Subscribe {
		s := &c.Subscribe[i]
		s.Name = cmp.Or(s.Name, strconv.Itoa(i))
		s.Type = cmp.Or(s.Type, DefaultEventType)
		s.Group = cmp.Or(s.Group, c.Options.Group)
		if s.Stream != "" {
			s.Durable = cmp.Or(s.Durable, "errand-"+c.Name+"-"+s.Name)
		}
	}
	return c
}

// fieldErrors are the field errors of an errand error (or one for the whole).
func fieldErrors(err error) []errand.FieldError {
	var e *errand.Error
	if errors.As(err, &e) && len(e.Fields) > 0 {
		return e.Fields
	}
	return []errand.FieldError{{Message: errand.ErrorMessage(err)}}
}
