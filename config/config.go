// Package config loads errand.yaml, applies ERRAND_* environment variables and
// command-line flags on top, fills defaults and validates the result. Every error
// names the key and the line (or the variable or flag) it came from.
//
// Environment variables name a key path in upper case with "__" between levels:
// ERRAND_LISTEN sets listen, ERRAND_HTTP__MAX_WAIT sets http.max_wait.
package config

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/errandhq/errand"
)

// Config is errand's configuration. Its zero value, after Default, serves a pull
// operation-less errand on :8080 with SQLite in ./errand-data.
type Config struct {
	// Listen is the address to serve on. Defaults to ":8080".
	Listen string `yaml:"listen"`
	// Store is where jobs live: sqlite://path (one node) or postgres://… (several
	// nodes; also ERRAND_DATABASE_URL). Defaults to "sqlite://./errand-data/errand.db".
	Store string `yaml:"store"`
	// Dev turns authentication off: every request runs as the dev principal.
	Dev bool `yaml:"dev"`
	// MemoryLimit is the Go runtime's soft memory limit: the heap is collected
	// harder as it nears it, and memory freed after a spike goes back to the
	// system. 0 (the default) takes GOMEMLIMIT when set, else 90 % of the
	// cgroup's memory.max when there is one, else sets none.
	MemoryLimit Size                  `yaml:"memory_limit"`
	Log         Log                   `yaml:"log"`
	HTTP        HTTP                  `yaml:"http"`
	Workers     Workers               `yaml:"workers"`
	Artifacts   Artifacts             `yaml:"artifacts"`
	Webhooks    Webhooks              `yaml:"webhooks"`
	Auth        Auth                  `yaml:"auth"`
	TLS         TLS                   `yaml:"tls"`
	Audit       Audit                 `yaml:"audit"`
	GraphQL     GraphQL               `yaml:"graphql"`
	Metrics     Metrics               `yaml:"metrics"`
	Tracing     Tracing               `yaml:"tracing"`
	Usage       Usage                 `yaml:"usage"`
	Operations  map[string]*Operation `yaml:"operations"`
	Channels    map[string]*Channel   `yaml:"channels"`
	// Bridges connect the event log to message brokers.
	Bridges []*Bridge `yaml:"bridges"`
}

// Channel declares a pub/sub channel, or a pattern of them.
type Channel struct {
	Description string `yaml:"description"`
	// History is how long events are kept for replay. Defaults to 24h.
	History Duration `yaml:"history"`
	// Schema, when set, is a JSON Schema every event's data must match.
	Schema any `yaml:"schema"`
}

// Artifacts says where the files jobs produce are kept.
type Artifacts struct {
	// Dir is the directory. Defaults to "artifacts" beside the SQLite database.
	Dir string `yaml:"dir"`
	// MaxBytes caps one artifact. Defaults to 100 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
}

// Webhooks tunes webhook and callback delivery.
type Webhooks struct {
	// AllowPrivate lists CIDR prefixes deliveries may reach although they are
	// loopback, private or link-local (e.g. 127.0.0.0/8). Empty by default;
	// --dev and the demo allow loopback.
	AllowPrivate []string `yaml:"allow_private"`
	// Timeout bounds one delivery attempt. Defaults to 10s.
	Timeout Duration `yaml:"timeout"`
	// RetrySchedule is the delay before each attempt, counted from the one
	// before; its length is the number of attempts. Defaults to 0s, 5s, 5m,
	// 30m, 2h, 5h, 10h, 14h, 20h, 24h.
	RetrySchedule []Duration `yaml:"retry_schedule"`
	// Concurrency is how many attempts to one endpoint run at once. Defaults to 16.
	Concurrency int `yaml:"concurrency"`
	// RateLimit caps attempts per second to one endpoint (endpoints may set
	// their own). 0, the default, sets none.
	RateLimit int `yaml:"rate_limit"`
	// DisableAfter disables an endpoint that has failed every attempt for this
	// long. Defaults to 5d.
	DisableAfter Duration `yaml:"disable_after"`
	// Retention is how long finished deliveries and their attempts are kept.
	// Defaults to 30d.
	Retention Duration `yaml:"retention"`
	// RotationOverlap is how long a rotated-out secret still signs. Defaults to 24h.
	RotationOverlap Duration `yaml:"rotation_overlap"`
}

// Log says how errand logs.
type Log struct {
	// Level is debug, info, warn or error. Defaults to info.
	Level string `yaml:"level"`
	// Format is json or text. Defaults to json.
	Format string `yaml:"format"`
}

// HTTP tunes the HTTP server.
type HTTP struct {
	// MaxBodyBytes is the largest request body accepted. Defaults to 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// PublicURL is where clients reach errand (https://errand.example), as
	// the OpenAPI and AsyncAPI documents and /docs name it. Defaults to
	// http(s)://<listen> as bound, localhost for an unspecified host.
	PublicURL string `yaml:"public_url"`
	// RateLimit admits every request of a key (principal by default) at a
	// rate; none by default.
	RateLimit RateLimit `yaml:"rate_limit"`
	// MaxWait caps Prefer: wait=N and long-polls. Defaults to 60s.
	MaxWait Duration `yaml:"max_wait"`
	// ReadHeaderTimeout bounds reading request headers. Defaults to 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive connections. Defaults to 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// ShutdownTimeout is how long a graceful stop waits for requests. Defaults to 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// CORS lets pages on other origins call the API.
	CORS CORS `yaml:"cors"`
	// MaxStreams caps the SSE and WebSocket streams one principal holds open on
	// a node. Defaults to 1000 (no limit in development mode).
	MaxStreams int `yaml:"max_streams_per_principal"`
	// MaxConnections caps the open client connections; at the cap the oldest
	// idle keep-alive connection is closed for a new one, and a few more are
	// kept for /healthz and /readyz. 0 (the default) takes the process's
	// open-file limit less a fifth (at least 256) for the store and outbound calls.
	MaxConnections int `yaml:"max_connections"`
	// PageBytes bounds one list page and one lease answer, in bytes of jobs'
	// input and result (or events' data): fewer items, with a next_cursor for
	// lists, always at least one. Defaults to 8MiB.
	PageBytes Size `yaml:"page_bytes"`
	// ReplayBytes bounds one history read of an SSE or WebSocket stream, in
	// bytes of event data (at least one event). Defaults to 256KiB.
	ReplayBytes Size `yaml:"replay_bytes"`
	// StreamBufferBytes bounds the live events waiting for one stream (and one
	// WebSocket connection) before it catches up from the store (SSE) or is
	// reset (WebSocket). Defaults to 1MiB.
	StreamBufferBytes Size `yaml:"stream_buffer_bytes"`
	// ListTimeout bounds one job list: longer answers 503 with Retry-After.
	// Defaults to 5s.
	ListTimeout Duration `yaml:"list_timeout"`
}

// Workers tunes the worker protocol.
type Workers struct {
	// DefaultLease is the lease when a worker does not ask for one. Defaults to 60s.
	DefaultLease Duration `yaml:"default_lease"`
	// MaxLease caps the lease a worker may ask for. Defaults to 1h.
	MaxLease Duration `yaml:"max_lease"`
	// MaxJobs caps the jobs one lease request takes. Defaults to 1000.
	MaxJobs int `yaml:"max_jobs"`
}

// Operation declares one kind of work.
type Operation struct {
	Description string `yaml:"description"`
	Route       string `yaml:"route"`
	// InputSchema is the JSON Schema (draft 2020-12) a job's input must match.
	// Defaults to none: any JSON.
	InputSchema any `yaml:"input_schema"`
	// ResultSchema is the JSON Schema (draft 2020-12) a worker's result must
	// match; a result that does not is a failed attempt (result_invalid), never
	// a job's result. Defaults to none: any JSON.
	ResultSchema any      `yaml:"result_schema"`
	Handler      Handler  `yaml:"handler"`
	Timeout      Duration `yaml:"timeout"`
	Retry        Retry    `yaml:"retry"`
	Concurrency  int      `yaml:"concurrency"`
	Wait         Duration `yaml:"wait"`
	Retention    Duration `yaml:"retention"`
	// RateLimit admits submits per key (each job of a batch counts).
	RateLimit RateLimit `yaml:"rate_limit"`
	// StartRate caps the jobs that start per second across the cluster ("10/s").
	StartRate string `yaml:"start_rate"`
	// ConcurrencyKey caps the jobs running at once per key.
	ConcurrencyKey ConcurrencyKey `yaml:"concurrency_key"`
	// Fairness shares leases between keys by weighted round robin.
	Fairness Fairness `yaml:"fairness"`
	// MaxQueued refuses submits beyond a queue depth (503 queue_full).
	MaxQueued MaxQueued `yaml:"max_queued"`
	// Unique makes a duplicate submit answer the existing job.
	Unique Unique `yaml:"unique"`
}

// Handler says how jobs of an operation run.
type Handler struct {
	// Type is pull, http or exec. Defaults to pull.
	Type string `yaml:"type"`
	// URL is the http handler's target.
	URL string `yaml:"url"`
	// Method is the http handler's method. Defaults to POST.
	Method string `yaml:"method"`
	// Headers are sent with every http handler request.
	Headers map[string]string `yaml:"headers"`
	// Secret signs http handler requests; errand makes one when empty.
	Secret string `yaml:"secret"`
	// Command is the exec handler's program and arguments.
	Command []string `yaml:"command"`
	// Env adds variables to the exec handler's environment.
	Env map[string]string `yaml:"env"`
	// Dir is the exec handler's working directory.
	Dir string `yaml:"dir"`
	// Timeout bounds one call or run. Defaults to the operation's timeout.
	Timeout Duration `yaml:"timeout"`
	// Workers is how many jobs this node runs at once. Defaults to concurrency, or 8.
	Workers int `yaml:"workers"`
}

// Retry is an operation's retry policy.
type Retry struct {
	MaxAttempts int      `yaml:"max_attempts"`
	Initial     Duration `yaml:"initial"`
	Max         Duration `yaml:"max"`
}

// Default returns the configuration with every default filled in.
func Default() *Config {
	c := &Config{}
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	c.Listen = or(c.Listen, ":8080")
	c.Store = or(c.Store, "sqlite://./errand-data/errand.db")
	c.Log.Level = or(c.Log.Level, "info")
	c.Log.Format = or(c.Log.Format, "json")
	if c.HTTP.MaxBodyBytes == 0 {
		c.HTTP.MaxBodyBytes = errand.DefaultMaxBodyBytes
	}
	c.HTTP.MaxWait = orD(c.HTTP.MaxWait, errand.DefaultMaxWait)
	c.HTTP.ReadHeaderTimeout = orD(c.HTTP.ReadHeaderTimeout, 10*time.Second)
	c.HTTP.IdleTimeout = orD(c.HTTP.IdleTimeout, 120*time.Second)
	c.HTTP.ShutdownTimeout = orD(c.HTTP.ShutdownTimeout, 30*time.Second)
	c.HTTP.PageBytes = cmp.Or(c.HTTP.PageBytes, errand.DefaultPageBytes)
	c.HTTP.ReplayBytes = cmp.Or(c.HTTP.ReplayBytes, errand.DefaultReplayBytes)
	c.HTTP.StreamBufferBytes = cmp.Or(c.HTTP.StreamBufferBytes, errand.DefaultStreamBufferBytes)
	c.HTTP.ListTimeout = orD(c.HTTP.ListTimeout, errand.DefaultListTimeout)
	c.Workers.DefaultLease = orD(c.Workers.DefaultLease, errand.DefaultLease)
	c.Workers.MaxLease = orD(c.Workers.MaxLease, errand.DefaultMaxLease)
	if c.Workers.MaxJobs == 0 {
		c.Workers.MaxJobs = errand.DefaultMaxLeaseJobs
	}
	c.Webhooks.Timeout = orD(c.Webhooks.Timeout, errand.DefaultWebhookTimeout)
	if c.Webhooks.Concurrency == 0 {
		c.Webhooks.Concurrency = errand.DefaultWebhookConcurrency
	}
	c.Webhooks.DisableAfter = orD(c.Webhooks.DisableAfter, errand.DefaultWebhookDisableAfter)
	c.Webhooks.Retention = orD(c.Webhooks.Retention, errand.DefaultWebhookRetention)
	c.Webhooks.RotationOverlap = orD(c.Webhooks.RotationOverlap, errand.DefaultRotationOverlap)
	c.accessDefaults()
	c.GraphQL.applyDefaults()
	c.telemetryDefaults()
	if c.Artifacts.MaxBytes == 0 {
		c.Artifacts.MaxBytes = errand.DefaultMaxArtifactBytes
	}
	for _, op := range c.Operations {
		if op != nil && op.Handler.Type == "" {
			op.Handler.Type = errand.HandlerPull
		}
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orD(d Duration, def time.Duration) Duration {
	if d == 0 {
		return Duration(def)
	}
	return d
}

var (
	opName  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	routeRe = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)
	// reserved are path prefixes errand serves itself.
	reserved = []string{"/v1", "/healthz", "/readyz", "/metrics", "/ui", "/docs", "/.well-known"}
)

// OperationList returns the declared operations as domain values, sorted by name.
func (c *Config) OperationList() []errand.Operation {
	names := make([]string, 0, len(c.Operations))
	for n := range c.Operations {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]errand.Operation, 0, len(names))
	for _, n := range names {
		o := c.Operations[n]
		out = append(out, errand.Operation{
			Name: n, Description: o.Description, Route: o.Route,
			InputSchema: schemaJSON(o.InputSchema), ResultSchema: schemaJSON(o.ResultSchema),
			Handler: errand.Handler{Type: o.Handler.Type, URL: o.Handler.URL, Method: o.Handler.Method,
				Headers: o.Handler.Headers, Secret: o.Handler.Secret, Command: o.Handler.Command, Env: o.Handler.Env,
				Dir: o.Handler.Dir, Timeout: time.Duration(o.Handler.Timeout), Workers: o.Handler.Workers},
			Timeout: time.Duration(o.Timeout),
			Retry: errand.RetryPolicy{MaxAttempts: o.Retry.MaxAttempts, Initial: time.Duration(o.Retry.Initial),
				Max: time.Duration(o.Retry.Max)},
			Concurrency: o.Concurrency, Wait: time.Duration(o.Wait), Retention: time.Duration(o.Retention),
			Flow: o.flow(),
		}.WithDefaults())
	}
	return out
}

// schemaJSON is a schema from the YAML as JSON; nil when none is set.
func schemaJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(v) // validated as JSON in validate
	return b
}

// Duration is a time.Duration written as "90s", "10m", "2h" or "7d".
type Duration time.Duration

// ParseDuration reads a duration, allowing a "d" (24h) suffix.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n float64
		if _, err := fmt.Sscanf(days, "%g", &n); err == nil && n >= 0 && n*24*float64(time.Hour) < math.MaxInt64 {
			return time.Duration(n * 24 * float64(time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (like 90s, 10m, 2h or 7d)", s)
	}
	return d, nil
}

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// ChannelList returns the declared channels, most specific first: exact names,
// then patterns with more literal segments. The first that matches a name
// decides its settings.
func (c *Config) ChannelList() []errand.Channel {
	out := make([]errand.Channel, 0, len(c.Channels))
	for p, ch := range c.Channels {
		out = append(out, errand.Channel{Pattern: p, Description: ch.Description, History: time.Duration(ch.History),
			Schema: schemaJSON(ch.Schema)})
	}
	slices.SortFunc(out, func(a, b errand.Channel) int {
		return cmp.Or(cmp.Compare(wildcards(a.Pattern), wildcards(b.Pattern)),
			cmp.Compare(strings.Count(b.Pattern, "."), strings.Count(a.Pattern, ".")), strings.Compare(a.Pattern, b.Pattern))
	})
	return out
}

func wildcards(p string) int { return strings.Count(p, "*") + 2*strings.Count(p, ">") }
