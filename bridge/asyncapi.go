package bridge

import "strings"

// Server describes one bridge as an AsyncAPI 3.0 server with its channels,
// for the AsyncAPI document (package spec) to include: the broker's protocol
// and host, the routes as channels (errand sends on publish routes' and
// receives on subscribe routes'), each with its protocol binding.
type Server struct {
	// Name is the bridge's name (the server's key in the document).
	Name string
	// Host is host:port (the first, when there are several); Protocol is
	// AsyncAPI's name for the broker's (nats, amqp, amqps, mqtt, secure-mqtt,
	// kafka, kafka-secure) and ProtocolVersion its version (0.9.1, 5, …).
	Host, Protocol, ProtocolVersion string
	// Description says what the bridge carries.
	Description string
	// Bindings is the server's binding object (bindings.<protocol>).
	Bindings map[string]any
	Channels []Channel
}

// Channel is one route as an AsyncAPI channel.
type Channel struct {
	// Name is unique within the bridge: publish-<route>, subscribe-<route>.
	Name string
	// Address is the route's address, its placeholders as AsyncAPI channel
	// parameters ({channel}, {type}, {operation}, {stream}).
	Address string
	// Parameters are the placeholders the address names.
	Parameters []string
	// Action is errand's: send (a publish route: errand sends to the broker)
	// or receive (a subscribe route).
	Action string
	// Events are a publish route's filters; Target a subscribe route's to:
	// (channel:<name> or jobs:<operation>).
	Events []string
	Target string
	// Bindings is the channel's binding object for the protocol.
	Bindings map[string]any
	// Reply, on a receive channel of jobs, says that a message with a reply
	// address gets the job's terminal event there (AsyncAPI's operation reply).
	Reply bool
}

// AsyncAPI describes every bridge as an AsyncAPI server.
func (bs *Bridges) AsyncAPI() []Server {
	var out []Server
	for _, b := range bs.list {
		out = append(out, b.asyncAPI())
	}
	return out
}

func (b *Bridge) asyncAPI() Server {
	s := Server{Name: b.cfg.Name, Host: b.ep.Hosts[0], Protocol: protocolName(b.ep), Bindings: map[string]any{}}
	switch b.ep.Broker {
	case AMQP:
		s.ProtocolVersion = "0.9.1"
	case MQTT:
		s.ProtocolVersion = "5"
		s.Bindings[MQTT] = map[string]any{"clientId": b.cfg.Options.ClientID, "cleanSession": false,
			"sessionExpiryInterval": int(b.cfg.Options.SessionExpiry.Seconds()), "bindingVersion": "0.2.0"}
	case Kafka:
		s.Bindings[Kafka] = map[string]any{"bindingVersion": "0.5.0"}
	}
	s.Description = "errand's " + b.ep.Broker + " bridge " + b.cfg.Name + ", acting in tenant " + b.cfg.Tenant
	for _, p := range b.cfg.Publish {
		t, _ := ParseTemplate(p.To)
		ch := Channel{Name: "publish-" + p.Name, Address: p.To, Action: "send", Events: p.Events, Parameters: params(t)}
		ch.Bindings = b.binding(p.To, true)
		s.Channels = append(s.Channels, ch)
	}
	for _, r := range b.cfg.Subscribe {
		kind, _, _ := cutTarget(r.To)
		ch := Channel{Name: "subscribe-" + r.Name, Address: r.From, Action: "receive", Target: r.To, Reply: kind == "jobs"}
		ch.Bindings = b.binding(r.From, false)
		if b.ep.Broker == NATS && r.Stream == "" {
			ch.Bindings[NATS] = map[string]any{"queue": r.Group, "bindingVersion": "0.1.0"}
		}
		s.Channels = append(s.Channels, ch)
	}
	return s
}

func protocolName(ep *Endpoint) string {
	switch {
	case ep.Broker == MQTT && ep.TLS:
		return "secure-mqtt"
	case ep.Broker == Kafka && ep.TLS:
		return "kafka-secure"
	}
	return ep.Scheme
}

func params(t Template) []string {
	var out []string
	for _, ph := range placeholders {
		if t.Uses(ph) {
			out = append(out, ph)
		}
	}
	return out
}

// binding is a channel's binding object for the bridge's protocol.
func (b *Bridge) binding(addr string, send bool) map[string]any {
	out := map[string]any{}
	switch b.ep.Broker {
	case AMQP:
		if send {
			ex, key, ok := strings.Cut(addr, "/")
			if !ok {
				ex, key = "", addr
			}
			out[AMQP] = map[string]any{"is": "routingKey", "exchange": map[string]any{"name": ex}, "routingKey": key,
				"bindingVersion": "0.3.0"}
		} else {
			out[AMQP] = map[string]any{"is": "queue", "queue": map[string]any{"name": addr}, "bindingVersion": "0.3.0"}
		}
	case MQTT:
		out[MQTT] = map[string]any{"qos": b.cfg.Options.QoS, "bindingVersion": "0.2.0"}
	case Kafka:
		k := map[string]any{"topic": addr, "bindingVersion": "0.5.0"}
		if !send {
			k["groupId"] = b.cfg.Options.Group
		}
		out[Kafka] = k
	}
	return out
}
