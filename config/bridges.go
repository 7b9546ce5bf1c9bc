package config

import (
	"strconv"
	"time"

	"github.com/errandhq/errand/bridge"
	"github.com/errandhq/errand/channel"
)

// Bridge connects the event log to a message broker (see bridge.Config).
type Bridge struct {
	// Name names the bridge: its cursors, its principal bridge:<name>, its status.
	Name string `yaml:"name"`
	// URL is nats://, amqp(s)://, mqtt(s)://, or kafka://host:port[,host:port].
	URL string `yaml:"url"`
	// Tenant is the tenant the bridge publishes and acts in. Defaults to "default".
	Tenant   string `yaml:"tenant"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// ClientID is the MQTT client id (defaults to errand-<name>-<hostname>),
	// the Kafka client id, the NATS connection name.
	ClientID string `yaml:"client_id"`
	// Group shares subscriptions between nodes: NATS queue group, MQTT shared
	// subscription, Kafka consumer group. Defaults to errand-<name>.
	Group string `yaml:"group"`
	// QoS is MQTT's, 1 (default) or 2.
	QoS *int `yaml:"qos"`
	// SessionExpiry is MQTT's session expiry. Defaults to 1h.
	SessionExpiry Duration `yaml:"session_expiry"`
	// SASL is Kafka's mechanism: plain, scram-sha-256 or scram-sha-512.
	SASL string    `yaml:"sasl"`
	TLS  BridgeTLS `yaml:"tls"`
	// DedupWindow is how long ids of messages taken are remembered. Defaults to 24h.
	DedupWindow Duration `yaml:"dedup_window"`
	// HashWindow is how long the hash of a message without an id is. Defaults to 10m.
	HashWindow Duration `yaml:"hash_window"`
	// MaxMessageBytes caps a message taken from the broker. Defaults to 1 MiB.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// Batch is how many events (messages) go in one round. Defaults to 256.
	Batch     int               `yaml:"batch"`
	Publish   []BridgePublish   `yaml:"publish"`
	Subscribe []BridgeSubscribe `yaml:"subscribe"`
}

// BridgeTLS configures TLS to the broker (always on for amqps:// and mqtts://).
type BridgeTLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// BridgePublish is a route from errand to the broker.
type BridgePublish struct {
	Name   string   `yaml:"name"`
	Events []string `yaml:"events"`
	To     string   `yaml:"to"`
}

// BridgeSubscribe is a route from the broker into errand.
type BridgeSubscribe struct {
	Name    string `yaml:"name"`
	From    string `yaml:"from"`
	To      string `yaml:"to"`
	Type    string `yaml:"type"`
	Stream  string `yaml:"stream"`
	Durable string `yaml:"durable"`
	Group   string `yaml:"group"`
}

// BridgeList returns the declared bridges as the bridge package takes them.
func (c *Config) BridgeList() []bridge.Config {
	var out []bridge.Config
	for _, b := range c.Bridges {
		out = append(out, b.bridge())
	}
	return out
}

func (b *Bridge) bridge() bridge.Config {
	bc := bridge.Config{Name: b.Name, URL: b.URL, Tenant: b.Tenant,
		Options: bridge.Options{Username: b.Username, Password: b.Password, ClientID: b.ClientID, Group: b.Group,
			QoS: qos(b.QoS), SessionExpiry: time.Duration(b.SessionExpiry), SASL: b.SASL,
			TLS: bridge.TLS{Enabled: b.TLS.Enabled, CAFile: b.TLS.CAFile, CertFile: b.TLS.CertFile, KeyFile: b.TLS.KeyFile,
				ServerName: b.TLS.ServerName, InsecureSkipVerify: b.TLS.InsecureSkipVerify}},
		DedupWindow: time.Duration(b.DedupWindow), HashWindow: time.Duration(b.HashWindow),
		MaxMessageBytes: b.MaxMessageBytes, Batch: b.Batch}
	for _, p := range b.Publish {
		bc.Publish = append(bc.Publish, bridge.Publish{Name: p.Name, Events: p.Events, To: p.To})
	}
	for _, s := range b.Subscribe {
		bc.Subscribe = append(bc.Subscribe, bridge.Subscribe{Name: s.Name, From: s.From, To: s.To, Type: s.Type,
			Stream: s.Stream, Durable: s.Durable, Group: s.Group})
	}
	return bc
}

// qos is a set QoS, or 0 (the default); an explicit 0 is -1, refused by Check.
func qos(q *int) int {
	switch {
	case q == nil:
		return 0
	case *q == 0:
		return -1
	}
	return *q
}

// validateBridges checks every bridge against the declared channels and
// operations; each problem names its key and line.
func (c *Config) validateBridges(bad func(path []string, format string, args ...any)) {
	chans := c.ChannelList()
	d := bridge.Declared{
		Channel: func(name string) bool {
			for _, ch := range chans {
				if channel.MatchPattern(ch.Pattern, name) {
					return true
				}
			}
			return false
		},
		Operation: func(name string) bool { _, ok := c.Operations[name]; return ok },
	}
	names := map[string]bool{}
	for i, b := range c.Bridges {
		at := func(p ...string) []string { return append([]string{"bridges", strconv.Itoa(i)}, p...) }
		if b == nil {
			bad(at(), "declare the bridge (name, url and routes)")
			continue
		}
		if names[b.Name] && b.Name != "" {
			bad(at("name"), "two bridges are called %q", b.Name)
		}
		names[b.Name] = true
		bc := b.bridge()
		for _, p := range bc.Check(d) {
			bad(at(p.Path...), "%s", p.Message)
		}
	}
}
