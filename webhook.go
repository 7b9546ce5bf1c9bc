package errand

import (
	"encoding/json"
	"time"
)

// Endpoint is a URL subscribed to a tenant's events: job events (by type and
// operation), channel events (by channel pattern) and endpoint events.
type Endpoint struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	Description string `json:"description"`
	// Events are the filters: event types ("job.succeeded", "job.*",
	// "endpoint.disabled"), "operation:<glob>" and "channel:<pattern>". Empty
	// means every event.
	Events []string `json:"events"`
	// Disabled endpoints get no deliveries; DisabledReason says why ("manual",
	// "gone" for a 410 answer, "failing" after failing continuously).
	Disabled       bool   `json:"disabled"`
	DisabledReason string `json:"disabled_reason,omitempty"`
	// RateLimit caps deliveries per second to this endpoint; 0 means the
	// configured default.
	RateLimit int `json:"rate_limit"`
	// FailingSince is when the current run of failed attempts began; nil while
	// the endpoint answers.
	FailingSince *time.Time `json:"failing_since"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`

	Tenant string `json:"-"`
	// Secret signs deliveries. PreviousSecret also signs them until
	// PreviousExpiresAt, so receivers can switch over after a rotation.
	Secret            string     `json:"-"`
	PreviousSecret    string     `json:"-"`
	PreviousExpiresAt *time.Time `json:"-"`
}

// Secrets returns the secrets deliveries are signed with at now.
func (e *Endpoint) Secrets(now time.Time) []string {
	return Secrets(e.Secret, e.PreviousSecret, e.PreviousExpiresAt, now)
}

// Secrets returns current, and previous while it has not expired.
func Secrets(current, previous string, expires *time.Time, now time.Time) []string {
	if previous != "" && expires != nil && now.Before(*expires) {
		return []string{current, previous}
	}
	return []string{current}
}

// DeliveryStatus is where a delivery is in its life.
type DeliveryStatus string

// A delivery is pending until an attempt succeeds (2xx) or it gives up.
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliverySucceeded DeliveryStatus = "succeeded"
	DeliveryFailed    DeliveryStatus = "failed"
)

// Delivery is one event owed to one endpoint (or to one job's callback_url). Its
// id is the webhook-id header, the same on every attempt.
type Delivery struct {
	ID         string `json:"id"`
	EndpointID string `json:"endpoint_id,omitempty"`
	// URL is where a callback delivery goes; endpoint deliveries go to their
	// endpoint's URL.
	URL       string         `json:"url,omitempty"`
	JobID     string         `json:"job_id,omitempty"`
	EventType string         `json:"event_type"`
	Status    DeliveryStatus `json:"status"`
	// AttemptCount is how many attempts were made.
	AttemptCount int `json:"attempt_count"`
	// NextAttemptAt is when the next attempt is due (pending only).
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	CreatedAt     time.Time  `json:"created_at"`
	// Payload is the request body, fixed when the event happened.
	Payload json.RawMessage `json:"payload,omitempty"`
	// Attempts, newest last, when the reader asked for them.
	Attempts []Attempt `json:"attempts,omitempty"`

	Tenant string `json:"-"`
	// Step is the position in the retry schedule; redelivery starts it over.
	Step int `json:"-"`
	// TraceParent is the W3C trace context every attempt continues (and sends
	// as its traceparent header): the job's for a job event, the publisher's
	// for a channel event; empty for none.
	TraceParent string `json:"-"`
}

// Attempt is one HTTP request of a delivery.
type Attempt struct {
	N    int       `json:"attempt"`
	Time time.Time `json:"time"`
	// StatusCode is the answer's status; 0 when there was none.
	StatusCode int `json:"status_code"`
	// LatencyMS is how long the request took, in milliseconds.
	LatencyMS float64 `json:"latency_ms"`
	// Error says why the attempt failed; empty when it succeeded.
	Error string `json:"error,omitempty"`
	// Response is the start of the answer's body (at most 1 KiB).
	Response string `json:"response,omitempty"`
}

// The event types about endpoints.
const (
	EventEndpointDisabled = "endpoint.disabled"
)

// StreamWebhooks is the stream of a tenant's endpoint events. It is not a valid
// channel name, so clients cannot publish to it.
const StreamWebhooks = "$webhooks"
