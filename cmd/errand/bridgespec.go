package main

import (
	"strings"

	"github.com/errandhq/errand/bridge"
	"github.com/errandhq/errand/spec"
	"github.com/errandhq/errand/telemetry"
)

// bridgeSamples is what /metrics reports of the bridges: each route's
// messages, errors and lag, and whether its bridge's connection is up.
func bridgeSamples(st []bridge.Status) []telemetry.BridgeSample {
	var out []telemetry.BridgeSample
	for _, b := range st {
		up := b.State == bridge.StateUp
		add := func(r bridge.RouteStatus, dir string, n uint64) {
			lag := int64(-1)
			if r.Lag != nil {
				lag = *r.Lag
			}
			out = append(out, telemetry.BridgeSample{Bridge: b.Name, Route: r.Name, Direction: dir, Up: up,
				Messages: n, Errors: r.Errors, Lag: lag})
		}
		for _, r := range b.Publish {
			add(r, "out", r.MessagesOut)
		}
		for _, r := range b.Subscribe {
			add(r, "in", r.MessagesIn)
		}
		if b.Replies != nil {
			add(*b.Replies, "out", b.Replies.MessagesOut)
		}
	}
	return out
}

// bridgeContract puts every configured bridge in the AsyncAPI document: a
// server per broker with its binding, a channel per route (its subject,
// topic or queue as the address, the template's placeholders as parameters),
// and errand's operation on it — send for a publish route, receive for a
// subscribe route, with the job's terminal event as the reply when the route
// submits jobs. Every message is an errand event (the Event schema), the
// de-duplication id and type in its headers.
func bridgeContract(servers []bridge.Server) spec.Extension {
	x := spec.Extension{Name: "bridges", Servers: map[string]any{}, Channels: map[string]any{}, Operations: map[string]any{},
		Messages: map[string]any{}}
	if len(servers) == 0 {
		return x
	}
	x.Messages["bridge.event"] = map[string]any{"name": "event", "title": "An errand event on a broker", "contentType": "application/json",
		"summary": "The event's JSON as its body; its id (the resume cursor, and the de-duplication id), type, stream and time in the message's headers or properties.",
		"headers": map[string]any{"type": "object", "properties": map[string]any{
			"errand-event-id": map[string]any{"type": "string", "description": "The event's id: NATS Nats-Msg-Id, AMQP message-id, an MQTT 5 user property, a Kafka header and the record key."},
			"errand-type":     map[string]any{"type": "string"}, "errand-stream": map[string]any{"type": "string"}, "errand-time": map[string]any{"type": "string"}}},
		"payload": map[string]any{"$ref": "#/components/schemas/Event"}}
	x.Messages["bridge.message"] = map[string]any{"name": "message", "title": "A message errand takes in", "contentType": "application/json",
		"summary": "A channel event's data, or a job's input; a payload that is not JSON is kept as {content_type, text|base64}.",
		"payload": map[string]any{}}
	x.Messages["bridge.job"] = map[string]any{"name": "job", "title": "A job's terminal event, sent to a reply address", "contentType": "application/json",
		"payload": map[string]any{"$ref": "#/components/schemas/Event"}}
	for _, s := range servers {
		server := map[string]any{"host": s.Host, "protocol": s.Protocol, "description": s.Description}
		if s.ProtocolVersion != "" {
			server["protocolVersion"] = s.ProtocolVersion
		}
		if len(s.Bindings) > 0 {
			server["bindings"] = s.Bindings
		}
		key := "bridge-" + s.Name
		x.Servers[key] = server
		for _, c := range s.Channels {
			bridgeChannel(&x, key, c)
		}
	}
	return x
}

// bridgeChannel adds one route of the bridge served at server.
func bridgeChannel(x *spec.Extension, server string, c bridge.Channel) {
	id := server + "-" + c.Name
	ch := map[string]any{"address": c.Address, "servers": []any{ref("#/servers/" + server)}}
	if len(c.Parameters) > 0 {
		params := map[string]any{}
		for _, p := range c.Parameters {
			params[p] = map[string]any{"description": "The event's " + p + "."}
		}
		ch["parameters"] = params
	}
	if len(c.Bindings) > 0 {
		ch["bindings"] = c.Bindings
	}
	op := map[string]any{"action": c.Action, "channel": ref("#/channels/" + id)}
	if c.Action == "send" {
		ch["description"] = "errand publishes the events matching " + strings.Join(c.Events, ", ") + ", at least once, each confirmed by the broker before its cursor moves."
		ch["messages"] = map[string]any{"event": ref("#/components/messages/bridge.event")}
		op["messages"] = []any{ref("#/channels/" + id + "/messages/event")}
	} else {
		ch["description"] = "errand takes each message in as " + c.Target + ", acknowledged after it commits; redeliveries are recognised."
		ch["messages"] = map[string]any{"message": ref("#/components/messages/bridge.message")}
		op["messages"] = []any{ref("#/channels/" + id + "/messages/message")}
		if c.Reply {
			replies := id + "-replies"
			x.Channels[replies] = map[string]any{"address": nil, "servers": []any{ref("#/servers/" + server)},
				"description": "The message's reply address (NATS reply subject, AMQP reply_to, MQTT 5 response topic, Kafka reply-topic header), with its correlation copied.",
				"messages":    map[string]any{"job": ref("#/components/messages/bridge.job")}}
			op["reply"] = map[string]any{"channel": ref("#/channels/" + replies), "messages": []any{ref("#/channels/" + replies + "/messages/job")}}
		}
	}
	x.Channels[id] = ch
	x.Operations[id] = op
}

func ref(p string) map[string]any { return map[string]any{"$ref": p} }
