package spec

import (
	"reflect"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/auth"
	"github.com/errandhq/errand/bridge"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/queue"
	"github.com/errandhq/errand/webhook"
)

// names are the domain types that are components of their own; reflected
// schemas refer to them by name.
var names = map[reflect.Type]string{
	reflect.TypeOf(errand.Job{}):         "Job",
	reflect.TypeOf(errand.Problem{}):     "Problem",
	reflect.TypeOf(errand.FieldError{}):  "FieldError",
	reflect.TypeOf(errand.Progress{}):    "Progress",
	reflect.TypeOf(errand.Artifact{}):    "Artifact",
	reflect.TypeOf(errand.Event{}):       "Event",
	reflect.TypeOf(errand.Lease{}):       "Lease",
	reflect.TypeOf(errand.Endpoint{}):    "Endpoint",
	reflect.TypeOf(errand.Delivery{}):    "Delivery",
	reflect.TypeOf(errand.Attempt{}):     "DeliveryAttempt",
	reflect.TypeOf(errand.APIKey{}):      "APIKey",
	reflect.TypeOf(errand.AuditEntry{}):  "AuditEntry",
	reflect.TypeOf(errand.Status("")):    "JobStatus",
	reflect.TypeOf(errand.Percentiles{}): "Percentiles",
}

func reflected(v any) schema { return reflectStruct(reflect.TypeOf(v), names) }

// baseSchemas are the components every document has: errand's own resources.
func baseSchemas() map[string]any {
	jobSchema := describe(reflected(errand.Job{}), "A job: one request to run an operation.", map[string]string{
		"input": "The input it was submitted with.", "result": "What its worker returned; null until it succeeds.",
		"error": "Why its last attempt failed; null unless it failed.", "attempt": "Attempts started so far.",
		"run_at":             "When it runs (or ran): its submit time, or later for a delay, a run_at or a retry's backoff.",
		"queue_position":     "While queued, on GET /v1/jobs/{id}: its place in its operation's queue (1 runs next); absent beyond the first 1,000.",
		"estimated_start_at": "While queued, on GET /v1/jobs/{id}: when it may start at the operation's recent drain rate — an estimate (null when nothing drained lately)."})
	props := jobSchema["properties"].(schema)
	props["links"] = object("", schema{"self": str("The job's URL."), "events": str("Its event stream.")}, "self", "events")
	jobSchema["required"] = append(jobSchema["required"].([]string), "links")
	problem := describe(reflected(errand.Problem{}), "An RFC 9457 problem; code is stable, clients may act on it.", nil)
	problem["properties"].(schema)["code"] = schema{"type": "string", "enum": problemCodes()}
	event := describe(reflected(errand.Event{}), "An entry of the event log; id is the cursor to resume after.", nil)
	event["properties"].(schema)["id"] = schema{"type": "string", "pattern": "^[0-9]+$"}
	event["required"] = append(event["required"].([]string), "id")
	return map[string]any{
		"JobBase":        jobSchema,
		"JobStatus":      schema{"type": "string", "enum": []string{"scheduled", "queued", "running", "succeeded", "failed", "canceled"}},
		"Problem":        problem,
		"FieldError":     describe(reflected(errand.FieldError{}), "One part of the request that is wrong (a JSON Pointer).", nil),
		"Progress":       reflected(errand.Progress{}),
		"Artifact":       reflected(errand.Artifact{}),
		"Event":          event,
		"EventList":      object("", schema{"events": arrayOf(ref("Event")), "next_cursor": nullable(str("Pass as ?after= for the next page."))}, "events", "next_cursor"),
		"JobList":        object("", schema{"jobs": arrayOf(ref("Job")), "next_cursor": nullable(str("Pass as ?cursor= for the next page."))}, "jobs", "next_cursor"),
		"SubmitBatch":    object("", schema{"jobs": schema{"type": "array", "minItems": 1, "maxItems": 1000, "items": schema{"allOf": []any{ref("Submit"), object("", schema{"idempotency_key": str("This job's idempotency key.")})}}}}, "jobs"),
		"SubmittedList":  object("", schema{"jobs": arrayOf(object("Each job in order: the job, or why it was refused.", schema{"job": ref("Job"), "error": ref("Problem")}))}, "jobs"),
		"Status":         object("", schema{"status": str("ok or ready.")}, "status"),
		"Operation":      operationView(),
		"OperationList":  object("", schema{"operations": arrayOf(ref("Operation"))}, "operations"),
		"Channel":        object("A declared channel, or a pattern of them.", schema{"pattern": str("A name, or a glob: '*' is one segment, a final '>' the rest."), "description": str(""), "history_seconds": integer("How long its events are kept for replay."), "schema": schema{"description": "The JSON Schema its events' data must match."}}, "pattern", "history_seconds"),
		"ChannelList":    object("", schema{"channels": arrayOf(ref("Channel"))}, "channels"),
		"PublishRequest": object("", schema{"type": str("The event's type (order.created)."), "data": schema{"description": "Any JSON; checked against the channel's schema."}}, "type"),
		"Published":      object("", schema{"id": str("The event's cursor."), "channel": str(""), "time": schema{"type": "string", "format": "date-time"}}, "id", "channel", "time"),
		"Lease":          reflected(errand.Lease{}),
		"LeaseRequest":   reflected(queue.LeaseParams{}),
		"LeaseList": object("", schema{"leases": arrayOf(ref("Lease")),
			"completed": arrayOf(object("", schema{"lease_id": str(""), "job_id": str(""), "status": ref("JobStatus"), "error": ref("Problem")}, "lease_id"))}, "leases"),
		"Heartbeat":          reflected(queue.HeartbeatParams{}),
		"HeartbeatResult":    reflected(queue.HeartbeatResult{}),
		"Complete":           object("", schema{"result": schema{"description": "The job's result (checked against the operation's result_schema)."}}),
		"CompleteBatch":      object("", schema{"completions": arrayOf(reflected(queue.Completion{})), "brief": schema{"type": "boolean", "description": "Answer each with job_id and status instead of the whole job."}}, "completions"),
		"BatchResults":       object("", schema{"results": arrayOf(object("", schema{"lease_id": str(""), "job": ref("Job"), "job_id": str(""), "status": ref("JobStatus"), "error": ref("Problem")}, "lease_id"))}, "results"),
		"FailRequest":        failRequest(),
		"Endpoint":           reflected(errand.Endpoint{}),
		"EndpointRequest":    object("", schema{"url": schema{"type": "string", "format": "uri"}, "description": str(""), "events": arrayOf(str("An event type (job.succeeded, job.*), operation:<glob> or channel:<pattern>.")), "disabled": schema{"type": "boolean"}, "rate_limit": integer("Deliveries per second at most; 0 is the configured default.")}),
		"EndpointWithSecret": schema{"allOf": []any{ref("Endpoint"), object("", schema{"secret": str("whsec_…: verify deliveries with it (Standard Webhooks).")}, "secret")}},
		"EndpointList":       object("", schema{"endpoints": arrayOf(ref("Endpoint"))}, "endpoints"),
		"Delivery":           reflected(errand.Delivery{}),
		"DeliveryAttempt":    reflected(errand.Attempt{}),
		"DeliveryList":       object("", schema{"deliveries": arrayOf(ref("Delivery")), "next_cursor": nullable(str(""))}, "deliveries", "next_cursor"),
		"RecoverRequest":     object("", schema{"since": schema{"type": "string", "format": "date-time"}}, "since"),
		"Recovered":          object("", schema{"redelivering": integer("")}, "redelivering"),
		"CallbackSecret":     reflected(webhook.CallbackSecret{}),
		"APIKey":             reflected(errand.APIKey{}),
		"KeyRequest":         object("", schema{"name": str(""), "roles": arrayOf(str("")), "tenant": str("Defaults to the caller's."), "expires_in_seconds": integer("0: never.")}, "name", "roles"),
		"CreatedKey":         schema{"allOf": []any{ref("APIKey"), object("", schema{"token": str("ek_…: shown this once.")}, "token")}},
		"KeyList":            object("", schema{"keys": arrayOf(ref("APIKey"))}, "keys"),
		"KeyID":              object("", schema{"kid": str("")}, "kid"),
		"Ticket":             object("", schema{"ticket": str(""), "expires_at": schema{"type": "string", "format": "date-time"}}, "ticket", "expires_at"),
		"TokenRequest":       object("", schema{"grant_type": schema{"const": "client_credentials"}, "client_id": str("An API key's id."), "client_secret": str("Its token."), "scope": str("Roles the token gets, space-separated (only roles the key may grant).")}, "grant_type"),
		"AccessToken":        reflected(auth.AccessToken{}),
		"OAuthError":         reflected(auth.OAuthError{}),
		"JWKS":               object("", schema{"keys": arrayOf(schema{"type": "object"})}, "keys"),
		"AuditEntry":         reflected(errand.AuditEntry{}),
		"AuditPage":          object("", schema{"entries": arrayOf(ref("AuditEntry")), "next_cursor": str("")}, "entries"),
		"Principal":          reflected(errand.Principal{}),
		"BridgeStatus":       reflected(bridge.Status{}),
		"BridgeList":         object("", schema{"bridges": arrayOf(ref("BridgeStatus"))}, "bridges"),
		"UsageReport":        describe(reflected(errand.UsageReport{}), "A tenant's usage over a range, per operation (\"\" holds what belongs to none: channel events, webhook deliveries) and bucket, summed over every node.", nil),
		"Percentiles":        describe(reflected(errand.Percentiles{}), "Durations in seconds: how many, and their 50th, 95th and 99th percentiles (null when none), each within 4.5 % of an observed one.", nil),
		"JobCreatedData":     object("", schema{"operation": str(""), "status": ref("JobStatus"), "run_at": schema{"type": "string", "format": "date-time"}}, "operation", "status", "run_at"),
		"JobStartedData":     object("", schema{"attempt": integer(""), "worker": str("The worker's name, when it gave one.")}, "attempt"),
		"JobRetryingData":    describe(reflected(job.RetryingData{}), "", map[string]string{"reason": "The failure's code (lease_expired, timeout, result_invalid, a worker's), released or manual."}),
		"ChannelDelivery":    object("A channel event, delivered.", schema{"channel": str(""), "cursor": str(""), "type": str(""), "data": schema{}}, "channel", "cursor", "type", "data"),
		"WebhookPayload":     object("A delivery's body (Standard Webhooks).", schema{"type": str("The event type."), "timestamp": schema{"type": "string", "format": "date-time"}, "data": schema{"description": "A job event: the job. A channel event: {channel, cursor, type, data}. endpoint.disabled: the endpoint."}}, "type", "timestamp", "data"),
	}
}

func operationView() schema {
	return object("A declared operation.", schema{
		"name": str(""), "description": str(""), "route": str("Its own path, if mounted: a POST there submits with the body as input."),
		"input_schema": schema{"description": "The JSON Schema its input must match."}, "result_schema": schema{"description": "The JSON Schema its results must match."},
		"handler": schema{"enum": []string{"pull", "http", "exec"}}, "timeout_seconds": integer(""), "max_attempts": integer(""),
		"concurrency": integer("0: unlimited."), "wait_seconds": schema{"type": "number"}, "retention_seconds": integer(""),
		"signing_secret":  str("An http handler's signing secret (key managers only)."),
		"queued":          integer("How many of its jobs are queued now (GET /v1/operations/{name} only)."),
		"drain_rate":      schema{"type": "number", "description": "How many of its jobs started per second over the last minute, every node's (GET /v1/operations/{name} only): what queue_full's Retry-After and estimated_start_at are computed from."},
		"paused":          schema{"type": "boolean", "description": "Its leases are paused (POST …/pause), on every node."},
		"running":         integer("How many of its jobs run now, on every node."),
		"start_rate":      str("The most jobs started per period across the cluster (\"10/s\")."),
		"concurrency_key": object("The most jobs running at once per key.", schema{"key": str("principal, tenant, global, input:/pointer or header:Name."), "limit": integer("")}, "key", "limit"),
		"fairness":        object("Leases are shared between the key's values by weighted round robin.", schema{"key": str(""), "weights": schema{"type": "object", "additionalProperties": schema{"type": "integer"}, "description": "Weights of some values (default 1)."}}, "key"),
		"rate_limit":      object("Submits admitted per key.", schema{"rate": str(""), "burst": integer(""), "key": str("")}, "rate", "burst", "key"),
		"max_queued":      object("Submits beyond this queue depth are refused (queue_full).", schema{"limit": integer(""), "key": str("Per key, when set.")}, "limit"),
		"unique":          object("A submit whose key matches a job not finished, or finished within the window, answers that job.", schema{"key": str(""), "window_seconds": schema{"type": "number"}}, "key", "window_seconds")},
		"name", "handler", "timeout_seconds", "max_attempts", "concurrency", "wait_seconds", "retention_seconds", "paused", "running")
}

func failRequest() schema {
	return object("", schema{
		"error":               object("", schema{"code": str("Your code for the failure (default worker_error)."), "message": str("")}),
		"retry":               schema{"type": "boolean", "description": "Try again while attempts are left. Defaults to true.", "default": true},
		"retry_after_seconds": schema{"type": "number", "minimum": 0, "description": "Overrides the backoff before the next attempt."},
	})
}
