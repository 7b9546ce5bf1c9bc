// Package spec describes errand's API in the two standard documents and a
// page for people, all made from what errand serves: the configuration
// (operations with their input_schema and result_schema, channels with
// theirs, auth) and the routes httpapi registers.
//
//   - OpenAPI 3.1 (/v1/openapi.json, .yaml): every route, documented in
//     routes.go by its pattern, each operation's own route, the problem
//     answers with their codes (from httpapi.Problems, the one map of codes
//     to statuses), headers, security per route, and the webhook deliveries
//     as OpenAPI webhooks. POST /v1/jobs takes a oneOf of the operations
//     discriminated by operation; a job's result is typed by its operation's
//     result_schema.
//   - AsyncAPI 3.0 (/v1/asyncapi.json, .yaml), written from errand's side:
//     it sends each job's events and each channel's (SSE), the WebSocket
//     protocol errand.v1 (it receives subscribe, unsubscribe, publish,
//     submit, ping and answers ack, error, pong; it sends event, reset) and
//     webhook deliveries.
//   - /docs: the operations with a curl line each, the routes, channels,
//     event types and auth, rendered with html/template from the same
//     model; its stylesheet and script are embedded and served under
//     /docs/assets/ with a CSP that allows nothing else.
//
// A Server (httpapi.Contracts) makes them once per Input (Update) and serves
// the bytes it keeps: serving allocates nothing. Generate makes them for
// `errand spec`.
//
// Schemas from the configuration go into components as Input.<op>,
// Result.<op> and Data.<channel>, their own references ("#/$defs/x")
// rewritten to point into the component.
//
// # Adding a transport
//
// A transport built later (GraphQL, a broker bridge) adds itself with an
// Extension that cmd/errand passes in Input.Extensions; nothing in this
// package changes:
//
//	spec.Extension{
//		Name: "graphql",
//		// Its HTTP routes, by the pattern it registers in httpapi/routes.go.
//		// A registered route without documentation fails Generate and the
//		// coverage test; so does documentation of a route not registered.
//		Routes: map[string]spec.Route{"POST /v1/graphql": {ID: "graphql", Tag: "GraphQL",
//			Summary: "GraphQL queries and mutations", Body: &spec.Body{Schema: …},
//			Answers: []spec.Answer{{Status: 200, Description: "The result.", Schema: …}}}},
//		// AsyncAPI 3.0 objects, merged by key (a key already taken is an error).
//		// A server of errand's own has host spec.Self: it is put at errand's
//		// address (wss under TLS, the pathname under the base path).
//		Servers:    map[string]any{"graphql-ws": map[string]any{"host": spec.Self, "protocol": "ws", "pathname": "/v1/graphql"}},
//		Channels:   map[string]any{…},
//		Operations: map[string]any{…},
//		Messages:   map[string]any{…}, // components/messages
//		Schemas:    map[string]any{…}, // components/schemas of both documents
//		// Tags its routes use, and sections of the /docs page (the SDL).
//		Tags:     []spec.Tag{{Name: "GraphQL", Description: "…"}},
//		Sections: []spec.Section{{ID: "graphql", Title: "GraphQL", Text: []string{"…"}, Code: sdl}},
//	}
//
// cmd/errand/graphqlspec.go is the GraphQL extension, built from
// graphql.Transports() and graphql.SDL().
//
// A broker bridge adds a server per broker with its binding
// ({"host": "nats.internal:4222", "protocol": "nats"}), a channel per
// route (its subject or topic as the address) and a send or receive
// operation for each direction, whose messages may refer to the job and
// channel event schemas (#/components/schemas/Event.<channel>, Job).
package spec
