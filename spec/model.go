package spec

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"unicode"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/httpapi"
)

// model is what both documents and the page are made from: the operations
// and channels of the configuration, their schemas as components, the routes.
type model struct {
	in       *Input
	base     string // where clients reach errand
	version  string
	ops      []errand.Operation
	channels []errand.Channel
	schemas  map[string]any // components/schemas of both documents
	examples map[string]any // an example input per operation
	aliases  map[string]Route
	extra    map[string]Route // extensions' routes
	kinds    map[string]httpapi.ProblemKind
	roles    []string
	hasOAuth bool
}

func newModel(in *Input) (*model, error) {
	m := &model{in: in, base: baseURL(in), version: cmp.Or(in.Version, "dev"), ops: in.Config.OperationList(),
		channels: in.Config.ChannelList(), schemas: baseSchemas(), examples: map[string]any{},
		aliases: map[string]Route{}, extra: map[string]Route{}, kinds: httpapi.Problems()}
	m.roles = append(m.roles, "admin")
	for r := range in.Config.Auth.Roles {
		if r != "admin" {
			m.roles = append(m.roles, r)
		}
	}
	slices.Sort(m.roles[1:])
	m.hasOAuth = slices.Contains(in.Routes, "POST /v1/oauth/token")
	m.addOperations()
	m.addChannels()
	for _, x := range in.Extensions {
		if err := merge("route", x.Name, m.extra, x.Routes); err != nil {
			return nil, err
		}
		if err := merge("schema", x.Name, m.schemas, x.Schemas); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// route is the documentation of a registered pattern.
func (m *model) route(pattern string) (Route, bool) {
	if r, ok := routes[pattern]; ok {
		return r, true
	}
	if r, ok := m.aliases[pattern]; ok {
		return r, true
	}
	r, ok := m.extra[pattern]
	return r, ok
}

// addOperations makes each operation's schemas (Input.<op>, Result.<op>,
// Submit.<op>, Job.<op>), the Submit and Job unions discriminated by
// operation, and the route of each operation mounted at one.
func (m *model) addOperations() {
	var submits, jobs []any
	submitMap, jobMap := schema{}, schema{}
	for _, op := range m.ops {
		in, res := "Input."+op.Name, "Result."+op.Name
		m.schemas[in] = describeSchema(embedSchema(op.InputSchema, in), "The input of "+op.Name+".")
		m.schemas[res] = describeSchema(embedSchema(op.ResultSchema, res), "The result of "+op.Name+".")
		var root any
		_ = json.Unmarshal(op.InputSchema, &root)
		ex := exampleOf(root, root, 0)
		if len(op.InputSchema) == 0 {
			ex = map[string]any{}
		}
		m.examples[op.Name] = ex
		m.schemas["Submit."+op.Name] = submitSchema(op, ex)
		m.schemas["Job."+op.Name] = schema{"allOf": []any{ref("JobBase"), schema{"properties": schema{
			"operation": schema{"const": op.Name}, "input": ref(in), "result": nullable(ref(res))}}},
			"description": "A job of " + op.Name + "."}
		submits, jobs = append(submits, ref("Submit."+op.Name)), append(jobs, ref("Job."+op.Name))
		submitMap[op.Name], jobMap[op.Name] = "#/components/schemas/Submit."+op.Name, "#/components/schemas/Job."+op.Name
		if op.Route != "" {
			m.aliases["POST "+op.Route] = aliasRoute(op, ex)
		}
	}
	if len(m.ops) == 0 {
		m.schemas["Submit"] = submitSchema(errand.Operation{}, nil)
		m.schemas["Job"] = ref("JobBase")
		return
	}
	m.schemas["Submit"] = schema{"oneOf": submits, "discriminator": schema{"propertyName": "operation", "mapping": submitMap}}
	m.schemas["Job"] = schema{"oneOf": jobs, "discriminator": schema{"propertyName": "operation", "mapping": jobMap}}
}

func describeSchema(s any, desc string) any {
	if m, ok := s.(map[string]any); ok {
		if _, has := m["description"]; !has {
			m["description"] = desc
		}
	}
	return s
}

// submitSchema is the body of POST /v1/jobs for op (any operation when op
// has no name).
func submitSchema(op errand.Operation, ex any) schema {
	name := schema{"type": "string", "description": "The operation to run."}
	input := schema{"description": "The operation's input."}
	required := []string{"operation"}
	if op.Name != "" {
		name, input = schema{"const": op.Name}, ref("Input."+op.Name)
		if len(op.InputSchema) > 0 {
			required = append(required, "input")
		}
	}
	s := object("Submit a job of "+cmp.Or(op.Name, "an operation")+".", schema{
		"operation":       name,
		"input":           input,
		"callback_url":    schema{"type": "string", "format": "uri", "description": "Gets the job's terminal event, signed with the tenant's callback secret."},
		"run_at":          schema{"type": "string", "format": "date-time", "description": "Run no earlier than this."},
		"delay_seconds":   schema{"type": "integer", "minimum": 0, "description": "Run after this many seconds."},
		"priority":        schema{"type": "integer", "description": "Higher runs first. Defaults to 0."},
		"max_attempts":    schema{"type": "integer", "minimum": 1, "description": "Overrides the operation's retry.max_attempts."},
		"timeout_seconds": schema{"type": "integer", "minimum": 1, "description": "Overrides the operation's timeout."},
		"metadata":        schema{"type": "object", "additionalProperties": schema{"type": "string"}, "description": "Your labels, kept with the job."},
	}, required...)
	if op.Name != "" {
		s["example"] = map[string]any{"operation": op.Name, "input": ex}
	}
	return s
}

// aliasRoute documents POST <route> of an operation mounted at its own path.
func aliasRoute(op errand.Operation, ex any) Route {
	return Route{ID: "submit" + camel(op.Name), Tag: "Operations", Summary: "Submit " + op.Name,
		Description: strings.TrimSpace(op.Description + "\n\nThe body is the input; answered exactly like POST /v1/jobs."),
		Headers:     []Param{hIdemKey, hPrefer},
		Body:        &Body{Schema: ref("Input." + op.Name), Required: len(op.InputSchema) > 0, Example: ex},
		Answers:     submitAnswers("Job." + op.Name), Errors: submitErrors}
}

// camel turns generate-report into GenerateReport.
func camel(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == '-' || r == '_' || r == '.' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
		}
		b.WriteRune(r)
		up = false
	}
	return b.String()
}

// addChannels makes each channel's data schema and event message schema.
func (m *model) addChannels() {
	for _, ch := range m.channels {
		id := channelID(ch.Pattern)
		data := "Data." + id
		m.schemas[data] = describeSchema(embedSchema(ch.Schema, data), "The data of an event of "+ch.Pattern+".")
		m.schemas["Event."+id] = schema{"allOf": []any{ref("Event"), schema{"properties": schema{"data": ref(data)}}},
			"description": "An event of " + ch.Pattern + "."}
	}
}

// channelID names a channel pattern in component keys: orders.* is orders.star.
func channelID(p string) string {
	return strings.NewReplacer("*", "star", ">", "rest").Replace(p)
}

func (m *model) info() info {
	desc := "errand puts a hybrid synchronous/asynchronous API in front of slow work: submit an operation, get `202 Accepted` and a job, and follow it by polling, Server-Sent Events, WebSocket or signed webhooks.\n\nErrors are RFC 9457 problems (`application/problem+json`) with a stable `code`. Human documentation: " + m.base + "/docs. The event streams, the WebSocket protocol and webhook deliveries are described in " + m.base + "/v1/asyncapi.json."
	if m.in.Config.Dev {
		desc += "\n\nThis server runs in development mode: every request is served without authentication."
	}
	return info{Title: "errand", Version: m.version, Description: desc}
}

// security is the security requirement of a kind of route (nil: public).
func (m *model) security(a Access) []map[string][]string {
	if a == Public {
		return nil
	}
	out := []map[string][]string{{"apiKey": {}}, {"jwt": {}}}
	if m.hasOAuth {
		out = append(out, map[string][]string{"oauth2": {}})
	}
	if a == Stream {
		out = append(out, map[string][]string{"ticket": {}})
	}
	if m.in.Config.Dev {
		out = append(out, map[string][]string{})
	}
	return out
}

func (m *model) oaSecurity() map[string]any {
	issuers := []string{}
	for _, j := range m.in.Config.Auth.JWT {
		issuers = append(issuers, j.Issuer)
	}
	jwtDesc := "A JWT from a configured issuer"
	if len(issuers) > 0 {
		jwtDesc += " (" + strings.Join(issuers, ", ") + ")"
	}
	out := map[string]any{
		"apiKey": schema{"type": "http", "scheme": "bearer", "bearerFormat": "ek_…", "description": "An API key (errand keys create, POST /v1/keys) as Authorization: Bearer."},
		"jwt":    schema{"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": jwtDesc + ", or an access token from the token endpoint."},
		"ticket": schema{"type": "apiKey", "in": "query", "name": "ticket", "description": "A single-use ticket from POST /v1/tickets; event streams only."},
	}
	if m.hasOAuth {
		scopes := map[string]string{}
		for _, r := range m.roles {
			scopes[r] = "The role " + r + "."
		}
		out["oauth2"] = schema{"type": "oauth2", "description": "OAuth 2.0 client credentials: an API key's id and token are the client id and secret; scopes are roles.",
			"flows": schema{"clientCredentials": schema{"tokenUrl": m.base + "/v1/oauth/token", "scopes": scopes}}}
	}
	return out
}

// webhookTypes are the event types endpoints may subscribe to, and what
// their data is.
var webhookTypes = []struct{ typ, data, summary string }{
	{errand.EventJobCreated, "Job", "A job was submitted."},
	{errand.EventJobStarted, "Job", "A worker started an attempt."},
	{errand.EventJobProgress, "Job", "Its worker reported progress."},
	{errand.EventJobRetrying, "Job", "An attempt failed (or was released) and the job will run again."},
	{errand.EventJobSucceeded, "Job", "The job succeeded: data.result is its result."},
	{errand.EventJobFailed, "Job", "The job failed: data.error says why."},
	{errand.EventJobCanceled, "Job", "The job was canceled."},
	{errand.EventEndpointDisabled, "Endpoint", "The endpoint was disabled (410 Gone, or failing for days)."},
	{"channel", "ChannelDelivery", "An event published to a channel the endpoint subscribes to (channel:<pattern>); type is the publisher's."},
}

// webhooks are the OpenAPI webhooks: the deliveries errand sends.
func webhooks(m *model) map[string]*pathItem {
	out := map[string]*pathItem{}
	for _, w := range webhookTypes {
		body := schema{"allOf": []any{ref("WebhookPayload"), schema{"properties": schema{"data": ref(w.data)}}}}
		if w.typ != "channel" {
			body["allOf"].([]any)[1].(schema)["properties"].(schema)["type"] = schema{"const": w.typ}
		}
		out[w.typ] = &pathItem{Post: &oaOperation{OperationID: "on" + camel(w.typ), Tags: []string{"Webhooks"}, Summary: w.summary,
			Description: "Sent to each endpoint whose events select it (POST /v1/webhooks)" + callbackNote(w.typ) + ". Verify the signature (Standard Webhooks) before trusting the body; webhook-id is the same on every retry.",
			Parameters: []param{
				{Name: "webhook-id", In: "header", Required: true, Schema: schema{"type": "string"}, Description: "The delivery's id, the same on every attempt: use it to drop repeats."},
				{Name: "webhook-timestamp", In: "header", Required: true, Schema: schema{"type": "string", "pattern": "^[0-9]+$"}, Description: "Unix seconds of this attempt; refuse old ones."},
				{Name: "webhook-signature", In: "header", Required: true, Schema: schema{"type": "string"}, Description: "v1,<base64 HMAC-SHA256 of id.timestamp.body> (space-separated, one per secret in use)."}},
			RequestBody: &requestBody{Required: true, Content: map[string]mediaType{"application/json": {Schema: body}}},
			Responses: map[string]any{
				"200": &response{Description: "Received: any 2xx ends the delivery."},
				"410": &response{Description: "Gone: errand disables the endpoint."},
				"429": &response{Description: "Busy: retried after Retry-After (or the retry schedule).", Headers: map[string]any{"Retry-After": schema{"$ref": "#/components/headers/Retry-After"}}},
			}, Security: &[]map[string][]string{}}}
	}
	return out
}

func callbackNote(typ string) string {
	if errand.TerminalEvent(typ) {
		return ", and to the job's callback_url (signed with the tenant's callback secret)"
	}
	return ""
}
