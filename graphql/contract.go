package graphql

import (
	_ "embed"
	"strings"

	"github.com/errandhq/errand/graphql/exec"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
)

// Path is where the API is served.
const Path = "/v1/graphql"

//go:embed schema.graphqls
var sdl string

// SDL is the schema in the GraphQL schema definition language, as written,
// with its descriptions: for the API's contracts and /docs. It is the schema
// the executable one was generated from (TestSDL).
func SDL() string { return sdl }

// Canonical prints a schema the way gqlparser formats it (types sorted): the
// form the golden file testdata/schema.graphql holds of what is served.
func Canonical(s *ast.Schema) string {
	var b strings.Builder
	formatter.NewFormatter(&b, formatter.WithIndent("  ")).FormatSchema(s)
	return b.String()
}

// served is the executable schema's own.
func served() *ast.Schema { return exec.NewExecutableSchema(exec.Config{}).Schema() }

// Transport is one way clients reach the API, described for the contracts
// (an AsyncAPI channel, an OpenAPI path).
type Transport struct {
	// Name is the protocol's: graphql-over-http, graphql-transport-ws, graphql-sse.
	Name string
	// Methods are the HTTP methods the transport answers on Path.
	Methods []string
	Path    string
	// Subprotocol is the WebSocket sub-protocol a client asks for.
	Subprotocol string
	// Accept are the media types of the answers a client may ask for.
	Accept []string
	// Spec is where the protocol is written down.
	Spec        string
	Description string
	Messages    []Message
}

// Message is one message of a transport's protocol.
type Message struct {
	Name string
	// From is who sends it: client or server.
	From        string
	Description string
}

// Transports describes the API's three transports.
func Transports() []Transport {
	return []Transport{{
		Name: "graphql-over-http", Methods: []string{"POST", "GET"}, Path: Path,
		Accept: []string{mediaGraphQL, mediaJSON}, Spec: "https://graphql.github.io/graphql-over-http/draft/",
		Description: "Queries and mutations: POST a JSON body {query, operationName, variables, extensions}, or GET with them in the URL " +
			"(queries only; a mutation over GET is 405). Authorization: Bearer. With Accept: application/graphql-response+json a request " +
			"that fails before it runs is 4xx; with application/json every well-formed request is 200. Errors carry errand's problem code " +
			"in extensions.code.",
	}, {
		Name: "graphql-transport-ws", Methods: []string{"GET"}, Path: Path, Subprotocol: wsProtocol,
		Spec: "https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md",
		Description: "Queries, mutations and subscriptions over one WebSocket. The credential goes in connection_init's payload " +
			`({"authorization": "Bearer <token>"} or {"ticket": "<from POST /v1/tickets>"}), never in the URL; without a valid one the ` +
			"connection is closed with 4403. A connection whose credential ends (key revoked, token expired) is closed with 4401. " +
			"A subscriber that falls behind gets an error message whose extensions say where to resume (code slow_consumer, resumeAfter).",
		Messages: []Message{
			{"connection_init", "client", "first message; payload: the credential"},
			{"connection_ack", "server", "the credential was accepted"},
			{"ping", "client", "answered with pong (either side may ping)"},
			{"pong", "server", "the answer to ping"},
			{"subscribe", "client", "id and payload {query, operationName, variables, extensions}: runs an operation"},
			{"next", "server", "id and payload: one execution result"},
			{"error", "server", "id and payload: a list of GraphQL errors; the operation is over (a request error, or a subscription that fell behind)"},
			{"complete", "client", "id: stop the operation"},
			{"complete", "server", "id: the operation is over (a query's result was sent, a job reached its terminal event)"},
		},
	}, {
		Name: "graphql-sse", Methods: []string{"POST", "GET"}, Path: Path, Accept: []string{"text/event-stream"},
		Spec: "https://github.com/enisdenjo/graphql-sse/blob/master/PROTOCOL.md",
		Description: "Any operation as a Server-Sent Events stream (distinct connections mode): POST the JSON body (or GET with the " +
			"parameters in the URL) with Accept: text/event-stream and Authorization: Bearer (or ?ticket=). Each result is a next " +
			"event whose id is the cursor of the event it answers (Last-Event-ID resumes after it); the stream ends with complete.",
		Messages: []Message{
			{"next", "server", "data: one execution result; id: the event's cursor"},
			{"complete", "server", "the operation is over"},
		},
	}}
}

// The transports' names as the metrics count them (errand_streams{transport}).
const (
	transportWS  = "graphql-ws"
	transportSSE = "graphql-sse"
)
