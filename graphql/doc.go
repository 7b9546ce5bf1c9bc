// Package graphql serves errand's GraphQL API at /v1/graphql: queries,
// mutations and subscriptions over the job, channel and webhook services and
// the same event log as SSE and WebSocket.
package graphql

//go:generate go tool gqlgen generate --config gqlgen.yml
