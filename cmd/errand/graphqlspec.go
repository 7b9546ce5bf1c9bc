package main

import (
	"strings"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/graphql"
	"github.com/errandhq/errand/spec"
)

// graphQLContract documents /v1/graphql's two routes for the OpenAPI
// document, from what package graphql says of its transports. (Its
// WebSocket and event stream in the AsyncAPI document are still to be
// described there: graphql.Transports() lists their messages.)
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
	return spec.Extension{Name: "graphql", Routes: map[string]spec.Route{
		"POST " + graphql.Path: {ID: "graphql", Tag: "Events", Summary: "GraphQL: queries, mutations, and subscriptions as an event stream",
			Description: desc["graphql-over-http"] + "\n\n" + desc["graphql-sse"], Access: spec.Stream,
			Body:    &spec.Body{Required: true, Schema: request, Example: map[string]any{"query": "{ me { id tenant } }"}},
			Answers: []spec.Answer{answer}, Errors: append(errs, errand.EMEDIATYPE)},
		"GET " + graphql.Path: {ID: "graphqlGet", Tag: "Events", Summary: "GraphQL: a query in the URL, an event stream, or the graphql-transport-ws WebSocket",
			Description: strings.Join([]string{desc["graphql-over-http"], desc["graphql-transport-ws"]}, "\n\n"), Access: spec.Stream,
			Query: []spec.Param{{Name: "query", Description: "The GraphQL document (a query; mutations are sent with POST).", Schema: map[string]any{"type": "string"}, Example: "{ me { id } }"},
				{Name: "operationName", Description: "Which operation of the document to run.", Schema: map[string]any{"type": "string"}},
				{Name: "variables", Description: "The variables, as a JSON object.", Schema: map[string]any{"type": "string"}}},
			Answers: []spec.Answer{answer, {Status: 101, Description: "Switching to a WebSocket speaking graphql-transport-ws (Sec-WebSocket-Protocol: graphql-transport-ws); the credential goes in connection_init."}},
			Errors:  errs},
	}}
}
