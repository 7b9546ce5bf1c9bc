// Package httpapi serves errand's HTTP API: jobs, the worker protocol, operations
// and health. Every route is in routes.go; every error becomes a problem in
// writeError.
package httpapi

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/admit"
	"github.com/errandhq/errand/audit"
	"github.com/errandhq/errand/auth"
	"github.com/errandhq/errand/bridge"
	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/queue"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/telemetry"
	"github.com/errandhq/errand/webhook"
)

// Config tunes the API. The zero value is ready to use.
type Config struct {
	// Dev serves every request as the dev principal (no authentication).
	Dev bool
	// MaxBodyBytes caps request bodies. Defaults to 1 MiB.
	MaxBodyBytes int64
	// MaxWait caps Prefer: wait=N. Defaults to 60 seconds.
	MaxWait time.Duration
	// MaxArtifactBytes caps an artifact upload. Defaults to 100 MiB.
	MaxArtifactBytes int64
	// CORSOrigins may read answers from browsers ("*" for any). Defaults to none.
	CORSOrigins []string
	// CORSMaxAge is how long browsers may cache a preflight. Defaults to 10 minutes.
	CORSMaxAge time.Duration
	// MaxStreams caps the event streams (SSE and WebSocket) one principal holds
	// open on this node. 0 means no limit (the default; dev mode).
	MaxStreams int
	// ReplayBytes bounds one history read of an SSE or WebSocket stream, in
	// bytes of event data. Defaults to errand.DefaultReplayBytes.
	ReplayBytes int64
	// StreamBufferBytes bounds the live events waiting for one stream, and
	// for one WebSocket connection, in bytes of event data: past it the stream
	// catches up from the store (SSE) or is reset (WebSocket). Defaults to
	// errand.DefaultStreamBufferBytes.
	StreamBufferBytes int64
	// RateLimit is http.rate_limit: every authenticated request of a key
	// (and every submit and publish on a WebSocket) takes a token; nil
	// limits nothing (the default).
	RateLimit *errand.RateLimit
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.MaxBodyBytes = cmp.Or(out.MaxBodyBytes, errand.DefaultMaxBodyBytes)
	out.MaxWait = cmp.Or(out.MaxWait, errand.DefaultMaxWait)
	out.MaxArtifactBytes = cmp.Or(out.MaxArtifactBytes, errand.DefaultMaxArtifactBytes)
	out.CORSMaxAge = cmp.Or(out.CORSMaxAge, errand.DefaultCORSMaxAge)
	out.ReplayBytes = cmp.Or(out.ReplayBytes, errand.DefaultReplayBytes)
	out.StreamBufferBytes = cmp.Or(out.StreamBufferBytes, errand.DefaultStreamBufferBytes)
	return out
}

// Deps are what the API serves.
type Deps struct {
	Log      *slog.Logger
	Jobs     *job.Service
	Queue    *queue.Queue
	Channels *channel.Service
	Hub      *event.Hub
	Store    storage.Store
	// Webhooks serves the endpoints API; nil serves none.
	Webhooks *webhook.Service
	// Auth authenticates requests and serves keys, tokens and tickets; nil
	// serves only development mode.
	Auth *auth.Authenticator
	// Audit records denials and administrative acts and serves GET /v1/audit;
	// nil records nothing.
	Audit *audit.Log
	// Contracts serves GET /v1/openapi.json, /v1/asyncapi.json (and .yaml)
	// and /docs; nil serves none.
	Contracts Contracts
	// GraphQL serves /v1/graphql; nil serves none.
	GraphQL GraphQL
	// Bridges are the broker bridges GET /v1/bridges and /readyz show; nil: none.
	Bridges *bridge.Bridges
	// Streams ends when the server stops: event streams taken over from their
	// request (see serveSSE) run until then. nil keeps every stream on its request.
	Streams context.Context
	// Meter hears every request, stream and refusal (metrics); nil hears nothing.
	Meter Meter
	// Metrics serves GET /metrics (to metrics:read@*, or anyone in
	// development mode); nil serves none (metrics off, or on an address of
	// their own).
	Metrics http.Handler
	// Usage serves GET /v1/usage; nil serves none.
	Usage *telemetry.Usage
	// Limiter takes http.rate_limit (Config.RateLimit); nil: one over Store.
	Limiter *admit.Limiter
	// UI serves the dashboard at /ui/ (package ui); nil serves none.
	UI UI
}

// NewServer returns the API as one handler.
func NewServer(d Deps, cfg *Config) (http.Handler, error) {
	c := cfg.withDefaults()
	if c.MaxBodyBytes < 1 || c.MaxArtifactBytes < 1 || c.MaxWait < 0 || c.MaxStreams < 0 || c.CORSMaxAge < 0 {
		return nil, errors.New("http config: body and artifact limits must be positive; waits, stream limit and CORS max age not negative")
	}
	mux := http.NewServeMux()
	addRoutes(mux, d, &c)
	return observe(d.Log, meterOf(d), secure(cors(c.CORSOrigins, c.CORSMaxAge, plainText(d.Log, mux)))), nil
}

// meterOf is d's Meter, or one that hears nothing.
func meterOf(d Deps) Meter {
	if d.Meter == nil {
		return nopMeter{}
	}
	return d.Meter
}

// follow is a reader of one stream with the configured byte budgets.
func (c *Config) follow(store storage.Reader, hub *event.Hub, tenant, stream string, after int64) *event.Follow {
	return &event.Follow{Store: store, Hub: hub, Tenant: tenant, Stream: stream, After: after,
		PageBytes: c.ReplayBytes, BufferBytes: c.StreamBufferBytes}
}

// ready reports whether the store answers.
func ready(ctx context.Context, s storage.Store) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.Ping(ctx)
}
