package spec

import (
	"strconv"
	"strings"

	"github.com/errandhq/errand"
)

// asyncAPI is an AsyncAPI 3.0 document (https://www.asyncapi.com/docs/reference/specification/v3.0.0).
// It describes errand from its own side: it sends job and channel events (SSE,
// WebSocket) and webhook deliveries, and receives the WebSocket protocol's
// requests.
type asyncAPI struct {
	AsyncAPI           string         `json:"asyncapi"`
	ID                 string         `json:"id"`
	Info               info           `json:"info"`
	DefaultContentType string         `json:"defaultContentType"`
	Servers            map[string]any `json:"servers"`
	Channels           map[string]any `json:"channels"`
	Operations         map[string]any `json:"operations"`
	Components         aaComponents   `json:"components"`
}

type aaComponents struct {
	Schemas         map[string]any `json:"schemas"`
	Messages        map[string]any `json:"messages"`
	SecuritySchemes map[string]any `json:"securitySchemes"`
}

func asyncAPIDoc(m *model) (*asyncAPI, error) {
	scheme, host, path := hostOf(m.base)
	ws := "ws"
	if scheme == "https" {
		ws = "wss"
	}
	sec := []any{aref("#/components/securitySchemes/bearer"), aref("#/components/securitySchemes/ticket")}
	if m.hasOAuth {
		sec = append(sec, aref("#/components/securitySchemes/oauth2"))
	}
	d := &asyncAPI{AsyncAPI: "3.0.0", ID: "urn:errand:" + host, DefaultContentType: "application/json",
		Info: info{Title: "errand events", Version: m.version, Description: "errand's event streams as errand sends them: each job's events and each declared channel's over Server-Sent Events (GET …/events with Accept: text/event-stream) and the errand.v1 WebSocket protocol (GET /v1/ws), and webhook deliveries (Standard Webhooks). The HTTP API is described in " + m.base + "/v1/openapi.json."},
		Servers: map[string]any{
			"http":      schema{"host": host, "protocol": scheme, "pathname": path + "/", "description": "Server-Sent Events streams.", "security": sec},
			"ws":        schema{"host": host, "protocol": ws, "pathname": path + "/v1/ws", "description": "The WebSocket API: sub-protocol errand.v1, JSON text frames.", "security": sec},
			"receivers": schema{"host": "{receiver}", "protocol": "https", "description": "Your webhook endpoints (POST /v1/webhooks) and jobs' callback_url: errand POSTs deliveries to them.", "variables": schema{"receiver": schema{"description": "The host of the endpoint's URL.", "examples": []string{"hooks.example.com"}}}},
		},
		Channels: map[string]any{}, Operations: map[string]any{},
		Components: aaComponents{Schemas: asyncSchemas(m.schemas), Messages: map[string]any{}, SecuritySchemes: m.aaSecurity()}}
	d.jobEvents()
	for _, ch := range m.channels {
		d.channel(ch)
	}
	d.webSocket()
	d.webhooks()
	for _, x := range m.in.Extensions {
		for what, pair := range map[string][2]map[string]any{"server": {d.Servers, selfServers(x.Servers, scheme, ws, host, path)}, "channel": {d.Channels, x.Channels},
			"operation": {d.Operations, x.Operations}, "message": {d.Components.Messages, x.Messages}} {
			if err := merge(what, x.Name, pair[0], pair[1]); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

func aref(p string) schema { return schema{"$ref": p} }

// selfServers puts the servers an extension says are errand's own (host
// Self) at errand's address: host, TLS or not, and under the base path.
func selfServers(in map[string]any, scheme, ws, host, path string) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		s, ok := v.(map[string]any)
		if !ok || s["host"] != Self {
			out[k] = v
			continue
		}
		c := make(map[string]any, len(s))
		for f, x := range s {
			c[f] = x
		}
		c["host"] = host
		switch c["protocol"] {
		case "http":
			c["protocol"] = scheme
		case "ws":
			c["protocol"] = ws
		}
		if p, ok := c["pathname"].(string); ok {
			c["pathname"] = path + p
		}
		out[k] = c
	}
	return out
}

// asyncSchemas are the OpenAPI components as AsyncAPI schemas: the same,
// but for discriminator, which AsyncAPI writes as the property's name.
func asyncSchemas(in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		if s, ok := v.(schema); ok && s["discriminator"] != nil {
			c := schema{}
			for kk, vv := range s {
				c[kk] = vv
			}
			c["discriminator"] = s["discriminator"].(schema)["propertyName"]
			v = c
		}
		out[k] = v
	}
	return out
}

// jobEventTypes are a job's event types and their data.
var jobEventTypes = []struct{ typ, data, summary string }{
	{errand.EventJobCreated, "JobCreatedData", "The job was stored."},
	{errand.EventJobStarted, "JobStartedData", "A worker started an attempt."},
	{errand.EventJobProgress, "Progress", "Its worker reported progress."},
	{errand.EventJobRetrying, "JobRetryingData", "An attempt ended without success (or was released); the job runs again at run_at."},
	{errand.EventJobSucceeded, "Job", "The job succeeded; data is the job, with its result. The stream ends."},
	{errand.EventJobFailed, "Job", "The job failed; data is the job, with its error. The stream ends."},
	{errand.EventJobCanceled, "Job", "The job was canceled; data is the job. The stream ends."},
}

func (d *asyncAPI) jobEvents() {
	msgs, refs := schema{}, []any{}
	for _, e := range jobEventTypes {
		d.Components.Messages[e.typ] = schema{"name": e.typ, "title": e.typ, "summary": e.summary, "contentType": "application/json",
			"payload": schema{"allOf": []any{ref("Event"), schema{"properties": schema{"type": schema{"const": e.typ}, "data": ref(e.data)}}}}}
		msgs[e.typ] = aref("#/components/messages/" + e.typ)
		refs = append(refs, aref("#/channels/jobEvents/messages/"+e.typ))
	}
	d.Channels["jobEvents"] = schema{"address": "/v1/jobs/{jobId}/events", "title": "A job's events",
		"description": "GET with Accept: text/event-stream: the job's events from its start (or after Last-Event-ID / ?after=), live until its terminal event. Over the WebSocket: subscribe with {\"op\":\"subscribe\",\"job\":\"job_…\"}.",
		"servers":     []any{aref("#/servers/http")}, "parameters": schema{"jobId": schema{"description": "The job's id (job_…)."}}, "messages": msgs}
	d.Operations["sendJobEvents"] = schema{"action": "send", "channel": aref("#/channels/jobEvents"), "title": "Job events",
		"summary": "errand sends each event of a job as it commits.", "messages": refs}
}

// channel adds a declared channel (or pattern): a parameter per glob.
func (d *asyncAPI) channel(ch errand.Channel) {
	id := "channel_" + strings.NewReplacer(".", "_", "*", "star", ">", "rest").Replace(ch.Pattern)
	params, addr := schema{}, []string{}
	n := 0
	for _, seg := range strings.Split(ch.Pattern, ".") {
		switch seg {
		case "*":
			n++
			p := "segment" + strconv.Itoa(n)
			params[p] = schema{"description": "Any one segment of the channel's name."}
			addr = append(addr, "{"+p+"}")
		case ">":
			params["rest"] = schema{"description": "One or more segments of the channel's name (a.b.c)."}
			addr = append(addr, "{rest}")
		default:
			addr = append(addr, seg)
		}
	}
	msg := "Event." + channelID(ch.Pattern)
	d.Components.Messages[msg] = schema{"name": "event", "title": "An event of " + ch.Pattern, "contentType": "application/json",
		"summary": "The publisher's type and data (POST /v1/channels/{channel}/events or the WebSocket's publish).", "payload": ref(msg)}
	c := schema{"address": "/v1/channels/" + strings.Join(addr, ".") + "/events", "title": ch.Pattern,
		"description": strings.TrimSpace(ch.Description + "\n\nGET with Accept: text/event-stream: live events (replay with Last-Event-ID, ?after= or ?last=). Events are kept " + ch.History.String() + " for replay."),
		"servers":     []any{aref("#/servers/http")}, "messages": schema{"event": aref("#/components/messages/" + msg)}}
	if len(params) > 0 {
		c["parameters"] = params
	}
	d.Channels[id] = c
	d.Operations["send_"+id] = schema{"action": "send", "channel": aref("#/channels/" + id), "title": "Events of " + ch.Pattern,
		"messages": []any{aref("#/channels/" + id + "/messages/event")}}
}

// wsMessages are the errand.v1 WebSocket protocol's messages: what clients
// send (errand receives), then what errand sends.
var wsMessages = []struct {
	name, summary string
	props         schema
	required      []string
}{
	{"subscribe", "Follow a channel (channel) or a job (job), after a cursor.", schema{"channel": str("A channel name."), "job": str("A job id."), "after": str("The cursor to resume after.")}, nil},
	{"unsubscribe", "Stop a subscription (id is the subscription's).", schema{}, nil},
	{"publish", "Publish to a channel.", schema{"channel": str(""), "type": str(""), "data": schema{}}, []string{"channel", "type"}},
	{"submit", "Submit a job; the ack's result is the job.", schema{"operation": str(""), "input": schema{}, "priority": schema{"type": "integer"}, "delay_seconds": schema{"type": "integer", "minimum": 0}}, []string{"operation"}},
	{"ping", "Ask for a pong.", schema{}, nil},
	{"ack", "A request succeeded: subscribe → {subscribed, after}, unsubscribe → {unsubscribed}, publish → {id, channel, time}, submit → the job.", schema{"result": schema{}}, []string{"result"}},
	{"event", "An event of subscription sub.", schema{"sub": str("The subscription's id."), "event": ref("Event")}, []string{"sub", "event"}},
	{"error", "A request failed (id is its id; empty when no request is to blame).", schema{"error": ref("Problem")}, []string{"error"}},
	{"pong", "The answer to ping.", schema{}, nil},
	{"reset", "Subscription sub fell behind (slow_consumer: subscribe again from your last cursor), or its cursor is older than the retained history (cursor_too_old) or beyond the last event of the log, as after a restore from a backup (cursor_ahead): subscribe again after resume_after.", schema{"sub": str(""), "reason": schema{"enum": []string{"slow_consumer", "cursor_too_old", "cursor_ahead"}}, "resume_after": str("Where to resume (cursor_too_old, cursor_ahead).")}, []string{"sub", "reason"}},
}

func (d *asyncAPI) webSocket() {
	msgs := schema{}
	for _, w := range wsMessages {
		props := schema{"op": schema{"const": w.name}}
		for k, v := range w.props {
			props[k] = v
		}
		req := append([]string{"op"}, w.required...)
		if w.name != "event" && w.name != "reset" {
			props["id"] = str("The request's id, echoed in its answer (at most 64 bytes).")
			if w.name != "error" {
				req = append(req, "id")
			}
		}
		name := "ws." + w.name
		m := schema{"name": w.name, "title": w.name, "summary": w.summary, "contentType": "application/json",
			"payload": schema{"type": "object", "properties": props, "required": req}}
		if w.name != "event" && w.name != "reset" {
			m["correlationId"] = schema{"location": "$message.payload#/id"}
		}
		d.Components.Messages[name] = m
		msgs[w.name] = aref("#/components/messages/" + name)
	}
	d.Channels["ws"] = schema{"address": "/v1/ws", "title": "The WebSocket API",
		"description": "One connection (sub-protocol errand.v1, JSON text frames) multiplexes subscriptions, publishes and submits. Slow readers are reset, never silently thinned.",
		"servers":     []any{aref("#/servers/ws")}, "messages": msgs}
	in := func(name string, reply ...string) {
		op := schema{"action": "receive", "channel": aref("#/channels/ws"), "summary": "Clients send " + name + ".",
			"messages": []any{aref("#/channels/ws/messages/" + name)}}
		if len(reply) > 0 {
			var rs []any
			for _, r := range reply {
				rs = append(rs, aref("#/channels/ws/messages/"+r))
			}
			op["reply"] = schema{"channel": aref("#/channels/ws"), "messages": rs}
		}
		d.Operations["ws_"+name] = op
	}
	in("subscribe", "ack", "error")
	in("unsubscribe", "ack", "error")
	in("publish", "ack", "error")
	in("submit", "ack", "error")
	in("ping", "pong")
	for _, name := range []string{"event", "reset"} {
		d.Operations["ws_"+name] = schema{"action": "send", "channel": aref("#/channels/ws"), "summary": "errand sends " + name + ".",
			"messages": []any{aref("#/channels/ws/messages/" + name)}}
	}
}

func (d *asyncAPI) webhooks() {
	msgs, refs := schema{}, []any{}
	headers := schema{"type": "object", "required": []string{"webhook-id", "webhook-timestamp", "webhook-signature"}, "properties": schema{
		"webhook-id":        str("The delivery's id, the same on every attempt."),
		"webhook-timestamp": str("Unix seconds of the attempt."),
		"webhook-signature": str("v1,<base64 HMAC-SHA256 of id.timestamp.body>, one per secret in use."),
	}}
	for _, w := range webhookTypes {
		name := "webhook." + w.typ
		body := schema{"allOf": []any{ref("WebhookPayload"), schema{"properties": schema{"data": ref(w.data)}}}}
		d.Components.Messages[name] = schema{"name": w.typ, "title": w.typ, "summary": w.summary, "contentType": "application/json",
			"headers": headers, "payload": body}
		msgs[w.typ] = aref("#/components/messages/" + name)
		refs = append(refs, aref("#/channels/webhooks/messages/"+w.typ))
	}
	d.Channels["webhooks"] = schema{"address": nil, "title": "Webhook deliveries",
		"description": "POSTs to each endpoint's URL (and jobs' callback_url), signed by Standard Webhooks; retried with backoff for about three days, honouring Retry-After; 410 disables the endpoint.",
		"servers":     []any{aref("#/servers/receivers")}, "messages": msgs}
	d.Operations["sendWebhooks"] = schema{"action": "send", "channel": aref("#/channels/webhooks"), "title": "Webhook deliveries", "messages": refs,
		"bindings": schema{"http": schema{"method": "POST", "bindingVersion": "0.3.0"}}}
}

func (m *model) aaSecurity() map[string]any {
	out := map[string]any{
		"bearer": schema{"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <an API key, a JWT or an access token>."},
		"ticket": schema{"type": "httpApiKey", "in": "query", "name": "ticket", "description": "A single-use ticket from POST /v1/tickets."},
	}
	if m.hasOAuth {
		scopes := map[string]string{}
		for _, r := range m.roles {
			scopes[r] = "The role " + r + "."
		}
		out["oauth2"] = schema{"type": "oauth2", "description": "Client credentials; scopes are roles.",
			"flows": schema{"clientCredentials": schema{"tokenUrl": m.base + "/v1/oauth/token", "availableScopes": scopes}}}
	}
	return out
}
