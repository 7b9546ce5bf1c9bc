package main

import (
	"strings"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/graphql"
	"github.com/errandhq/errand/spec"
)

// graphQLContract documents GraphQL from what package graphql says of its
// transports: /v1/graphql's two routes in the OpenAPI document, its
// WebSocket (graphql-transport-ws) and event stream (graphql-sse) with
// their messages in the AsyncAPI document, and the schema on /docs.
func graphQLContract() spec.Extension {
	desc := map[string]string{}
	for _, t := range graphql.Transports() {
		desc[t.Name] = t.Description
	}
	object := func(d string) map[string]any { return map[string]any{"type": "object", "description": d} }
	request := map[string]any{"type": "object", "required": []string{"query"}, "properties": map[string]any{
		"query":         map[string]any{"type": "string", "description": "The GraphQL document (the schema: graphql/schema.graphqls, or introspection)."},
		"operationName": map[string]any{"type": "string", "description": "Which operation of the document to run."},
		"variables":     object("The operation's variables."),
		"extensions":    object("Extensions (none are read)."),
	}}
	result := map[string]any{"type": "object", "description": "A GraphQL execution result. Each error's extensions.code is errand's problem code.",
		"properties": map[string]any{"data": object("The result; absent when the request failed before it ran."),
			"errors":     map[string]any{"type": "array", "items": object("A GraphQL error: message, locations, path, extensions {code, status, errors, …}.")},
			"extensions": object("Extensions of the result.")}}
	answer := spec.Answer{Status: 200, Description: "The result (also a field's error: data holds what resolved).",
		ContentType: "application/graphql-response+json", Schema: result,
		Alt: []spec.Body{{ContentType: "application/json", Schema: result},
			{ContentType: "text/event-stream", Description: "With Accept: text/event-stream (graphql-sse): next events, each an execution result, then complete.", Schema: map[string]any{"type": "string"}}}}
	errs := []string{errand.EINVALID, errand.EMETHODNOTALLOWED, errand.ERATELIMITED}
	x := spec.Extension{Name: "graphql", Routes: map[string]spec.Route{
		"POST " + graphql.Path: {ID: "graphql", Tag: "GraphQL", Summary: "GraphQL: queries, mutations, and subscriptions as an event stream",
			Description: desc["graphql-over-http"] + "\n\n" + desc["graphql-sse"], Access: spec.Stream,
			Body:    &spec.Body{Required: true, Schema: request, Example: map[string]any{"query": "{ me { id tenant } }"}},
			Answers: []spec.Answer{answer}, Errors: append(errs, errand.EMEDIATYPE)},
		"GET " + graphql.Path: {ID: "graphqlGet", Tag: "GraphQL", Summary: "GraphQL: a query in the URL, an event stream, or the graphql-transport-ws WebSocket",
			Description: strings.Join([]string{desc["graphql-over-http"], desc["graphql-transport-ws"]}, "\n\n"), Access: spec.Stream,
			Query: []spec.Param{{Name: "query", Description: "The GraphQL document (a query; mutations are sent with POST).", Schema: map[string]any{"type": "string"}, Example: "{ me { id } }"},
				{Name: "operationName", Description: "Which operation of the document to run.", Schema: map[string]any{"type": "string"}},
				{Name: "variables", Description: "The variables, as a JSON object.", Schema: map[string]any{"type": "string"}}},
			Answers: []spec.Answer{answer, {Status: 101, Description: "Switching to a WebSocket speaking graphql-transport-ws (Sec-WebSocket-Protocol: graphql-transport-ws); the credential goes in connection_init."}},
			Errors:  errs},
	}}
	x.Tags = []spec.Tag{{Name: "GraphQL", Description: "GraphQL over HTTP, graphql-transport-ws and graphql-sse: the REST resources as a schema, subscriptions fed by the same event log."}}
	x.Sections = []spec.Section{{ID: "graphql", Title: "GraphQL",
		Text: []string{desc["graphql-over-http"], desc["graphql-transport-ws"], desc["graphql-sse"]}, Code: graphql.SDL()}}
	graphQLAsync(&x)
	return x
}

// graphQLAsync adds GraphQL's WebSocket and event stream to the AsyncAPI
// document: a server and a channel each, with every message of the protocol
// and who sends it.
func graphQLAsync(x *spec.Extension) {
	x.Servers, x.Channels, x.Operations, x.Messages = map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}
	for _, t := range graphql.Transports() {
		if len(t.Messages) == 0 {
			continue
		}
		protocol, binding := "http", map[string]any{}
		if t.Subprotocol != "" {
			protocol = "ws"
			binding = map[string]any{"ws": map[string]any{"bindingVersion": "0.1.0",
				"headers": map[string]any{"type": "object", "properties": map[string]any{
					"Sec-WebSocket-Protocol": map[string]any{"type": "string", "const": t.Subprotocol}}}}}
		}
		x.Servers[t.Name] = map[string]any{"host": spec.Self, "protocol": protocol, "pathname": t.Path,
			"description": t.Description, "externalDocs": map[string]any{"url": t.Spec},
			"security": []any{map[string]any{"$ref": "#/components/securitySchemes/bearer"}, map[string]any{"$ref": "#/components/securitySchemes/ticket"}}}
		msgs, from := map[string]any{}, map[string][]any{}
		for _, m := range t.Messages {
			key := m.Name
			if m.Name == "complete" { // sent by both sides over graphql-transport-ws, with different meanings
				key = m.Name + "_" + m.From
			}
			name := t.Name + "." + key
			x.Messages[name] = map[string]any{"name": m.Name, "title": m.Name + " (" + m.From + ")", "summary": m.Description,
				"contentType": "application/json", "payload": map[string]any{"type": "object",
					"properties": map[string]any{"type": map[string]any{"const": m.Name}}, "additionalProperties": true}}
			msgs[key] = map[string]any{"$ref": "#/components/messages/" + name}
			from[m.From] = append(from[m.From], map[string]any{"$ref": "#/channels/" + t.Name + "/messages/" + key})
		}
		x.Channels[t.Name] = map[string]any{"address": t.Path, "title": t.Name, "description": t.Description,
			"servers": []any{map[string]any{"$ref": "#/servers/" + t.Name}}, "messages": msgs,
			"bindings": binding}
		for side, action := range map[string]string{"client": "receive", "server": "send"} {
			if len(from[side]) > 0 {
				x.Operations[t.Name+"_"+side] = map[string]any{"action": action,
					"channel": map[string]any{"$ref": "#/channels/" + t.Name}, "summary": "Messages the " + side + " sends over " + t.Name + ".",
					"messages": from[side]}
			}
		}
	}
}
