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
	Handler     Handler
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
}

// Handler says how an operation's jobs run.
type Handler struct {
	// Type is pull (workers lease jobs over HTTP).
	Type string
}

// HandlerPull is the handler type whose jobs are leased by workers.
const HandlerPull = "pull"

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
	return o
}
