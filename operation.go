package errand

import (
	"encoding/json"
	"time"
)

// Operation is a named kind of work declared in configuration.
type Operation struct {
	Name        string
	Description string
	// Route, when set, mounts the operation at its own path: a POST there takes the
	// input as the body.
	Route string
	// InputSchema is a JSON Schema (draft 2020-12) the input must match; nil accepts any JSON.
	InputSchema json.RawMessage
	// ResultSchema is a JSON Schema (draft 2020-12) a worker's result must
	// match: a result that does not fails the attempt (result_invalid); nil
	// accepts any JSON.
	ResultSchema json.RawMessage
	Handler      Handler
	// Timeout is how long one attempt may run. Defaults to 10 minutes.
	Timeout time.Duration
	Retry   RetryPolicy
	// Concurrency is the most jobs of this operation running at once; 0 is unlimited.
	Concurrency int
	// Wait is how long a submit waits for the result when the client does not say
	// (the hybrid mode); 0 answers 202 at once.
	Wait time.Duration
	// Retention is how long a finished job is kept. Defaults to 168 hours.
	Retention time.Duration
	// Flow is the operation's flow control: rate limit, start rate, per-key
	// concurrency, fairness, backpressure, unique jobs.
	Flow Flow
}

// Handler says how an operation's jobs run.
type Handler struct {
	// Type is pull (workers lease jobs over HTTP), http (errand calls URL) or exec
	// (errand runs Command).
	Type string
	// URL is the target of an http handler.
	URL string
	// Method is the http handler's method. Defaults to POST.
	Method string
	// Headers are added to every http handler request.
	Headers map[string]string
	// Secret signs http handler requests (Standard Webhooks); empty: errand makes
	// one and keeps it in the store.
	Secret string
	// Command is the exec handler's program and arguments (no shell).
	Command []string
	// Env adds variables to the exec handler's environment.
	Env map[string]string
	// Dir is the exec handler's working directory. Defaults to errand's.
	Dir string
	// Timeout bounds one call or run. Defaults to the operation's Timeout.
	Timeout time.Duration
	// Workers is how many jobs errand runs at once for an http or exec handler
	// on this node. Defaults to the operation's Concurrency, or 8.
	Workers int
}

// The handler types.
const (
	HandlerPull = "pull"
	HandlerHTTP = "http"
	HandlerExec = "exec"
)

// RetryPolicy says how often and how soon a failed job runs again.
type RetryPolicy struct {
	// MaxAttempts is how many times a job runs at most. Defaults to 5.
	MaxAttempts int
	// Initial is the backoff after the first failed attempt. Defaults to 1 second.
	Initial time.Duration
	// Max caps the backoff. Defaults to 10 minutes.
	Max time.Duration
}

// Defaults for operations; every documented default above comes from here.
const (
	DefaultTimeout     = 10 * time.Minute
	DefaultMaxAttempts = 5
	DefaultInitial     = time.Second
	DefaultMaxBackoff  = 10 * time.Minute
	DefaultRetention   = 7 * 24 * time.Hour
)

// WithDefaults returns o with its zero knobs set to their defaults.
func (o Operation) WithDefaults() Operation {
	if o.Handler.Type == "" {
		o.Handler.Type = HandlerPull
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Retry.MaxAttempts == 0 {
		o.Retry.MaxAttempts = DefaultMaxAttempts
	}
	if o.Retry.Initial == 0 {
		o.Retry.Initial = DefaultInitial
	}
	if o.Retry.Max == 0 {
		o.Retry.Max = DefaultMaxBackoff
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.Handler.Timeout == 0 || o.Handler.Timeout > o.Timeout {
		o.Handler.Timeout = o.Timeout
	}
	if o.Handler.Method == "" && o.Handler.Type == HandlerHTTP {
		o.Handler.Method = "POST"
	}
	if o.Handler.Workers == 0 {
		o.Handler.Workers = o.Concurrency
		if o.Handler.Workers == 0 {
			o.Handler.Workers = 8
		}
	}
	return o
}

// Channel is a declared publish/subscribe topic: a name, or a pattern of names
// ("orders.*"), with how long its events are kept.
type Channel struct {
	// Pattern is the name or channel pattern from config: segments separated
	// by '.', where '*' matches one segment and a final '>' matches one or
	// more (channel.MatchPattern; not a permission glob, see MatchGlob).
	Pattern     string
	Description string
	// History is how long events are kept for replay. Defaults to 24 hours.
	History time.Duration
	// Schema, when set, is a JSON Schema every event's data must match.
	Schema json.RawMessage
}

// DefaultHistory keeps channel events for a day.
const DefaultHistory = 24 * time.Hour
