package spec

import (
	"net/http"

	"github.com/errandhq/errand"
)

// Documented returns the patterns of the routes this package documents
// itself (operations' routes and extensions' aside). The coverage test holds
// it against httpapi.Routes both ways.
func Documented() []string {
	out := make([]string, 0, len(routes))
	for p := range routes {
		out = append(out, p)
	}
	return out
}

func ok(status int, desc, schemaName string, headers ...string) Answer {
	a := Answer{Status: status, Description: desc, Headers: headers}
	if schemaName != "" {
		a.Schema = ref(schemaName)
	}
	return a
}

func jsonBody(schemaName, desc string) *Body {
	return &Body{Schema: ref(schemaName), Description: desc, Required: true}
}

var (
	qLimit     = Param{Name: "limit", Description: "Most entries on the page (default 100, at most 1000).", Schema: schema{"type": "integer", "minimum": 1, "maximum": 1000}}
	qCursor    = Param{Name: "cursor", Description: "The next_cursor of the previous page.", Schema: schema{"type": "string"}}
	qAfter     = Param{Name: "after", Description: "Resume after this event cursor (the id of the last event seen; 0 replays all that is retained).", Schema: schema{"type": "string", "pattern": "^[0-9]+$"}, Example: "0"}
	qLast      = Param{Name: "last", Description: "Start with the last N retained events (channels).", Schema: schema{"type": "integer", "minimum": 1}}
	qTicket    = Param{Name: "ticket", Description: "A single-use ticket from POST /v1/tickets, for clients that cannot send headers (EventSource, browsers' WebSocket).", Schema: schema{"type": "string"}}
	hPrefer    = Param{Name: "Prefer", Description: "`respond-async` answers 202 at once; `wait=N` waits up to N seconds (capped by http.max_wait) for the job to finish and answers 200 with it.", Schema: schema{"type": "string", "pattern": "^(respond-async|wait=[0-9]+)(, *(respond-async|wait=[0-9]+))*$"}, Example: "wait=10"}
	hIdemKey   = Param{Name: "Idempotency-Key", Description: "Submitting again with the same key and body (same principal) answers the original job, with Idempotent-Replayed: true; the same key with another body is 422 idempotency_key_reused.", Schema: schema{"type": "string", "maxLength": 255}}
	hLastEvent = Param{Name: "Last-Event-ID", Description: "The id of the last event seen: EventSource sends it when it reconnects.", Schema: schema{"type": "string", "pattern": "^[0-9]+$"}}
	hAccept    = Param{Name: "Accept", Description: "`text/event-stream` streams the events (Server-Sent Events); otherwise a JSON page.", Schema: schema{"type": "string"}, Example: "text/event-stream"}
)

// sse is the text/event-stream form of an events route.
var sse = Body{ContentType: "text/event-stream", Description: "Server-Sent Events: `retry:` first; per event `id: <cursor>`, `event: <type>`, `data: <the event as one line of JSON>`; a `: ping` comment every 15 s; `event: reset` (data `{reason, resume_after}`) when the cursor is older than the retained history (`cursor_too_old`) or beyond the log's last event (`cursor_ahead`), after which the stream goes on from `resume_after`.", Schema: schema{"type": "string"}}

// routes documents every route httpapi registers but operations' own (see
// aliasRoute), by pattern.
var routes = map[string]Route{
	"GET /healthz": {ID: "health", Tag: "Service", Summary: "Liveness: errand answers", Access: Public, Answers: []Answer{ok(200, "Alive.", "Status")}},
	"GET /readyz":  {ID: "ready", Tag: "Service", Summary: "Readiness: the store answers and takes writes", Access: Public, Answers: []Answer{ok(200, "Ready.", "Status")}, Errors: []string{errand.EUNAVAILABLE}},
	"GET /metrics": {ID: "metrics", Tag: "Service", Summary: "Prometheus metrics (metrics:read@*)", Description: "The Prometheus text exposition format (OpenMetrics when the scraper asks for it): jobs by operation, queue depth and age, HTTP, the store, event streams, webhooks, authentication. Served on `metrics.listen` instead when that is set; open in development mode.",
		Answers: []Answer{{Status: 200, Description: "The metrics.", ContentType: "text/plain", Schema: schema{"type": "string"}}}},
	"GET /v1/openapi.json":    doc("openAPIJSON", "This OpenAPI 3.1 document", "application/json"),
	"GET /v1/openapi.yaml":    doc("openAPIYAML", "This OpenAPI 3.1 document, as YAML", "application/yaml"),
	"GET /v1/asyncapi.json":   doc("asyncAPIJSON", "The AsyncAPI 3.0 document: event streams, the WebSocket protocol, webhooks", "application/json"),
	"GET /v1/asyncapi.yaml":   doc("asyncAPIYAML", "The AsyncAPI 3.0 document, as YAML", "application/yaml"),
	"GET /docs":               doc("docs", "The API's documentation, for people", "text/html"),
	"GET /ui/":                doc("dashboard", "The dashboard: jobs, operations, channels, webhooks and access, in a browser (signed in with an API key; a session cookie)", "text/html"),
	"POST /ui/":               {ID: "dashboardAction", Tag: "Service", Summary: "What the dashboard's forms do (a session cookie and its CSRF token)", Access: Public, Answers: []Answer{{Status: http.StatusSeeOther, Description: "Done: on to the page that shows it."}}, Errors: []string{errand.EFORBIDDEN}},
	"GET /docs/assets/{name}": {ID: "docsAsset", Tag: "Service", Summary: "A file the documentation page uses", Access: Public, Answers: []Answer{{Status: 200, Description: "The file.", ContentType: "text/css", Schema: schema{"type": "string"}, Alt: []Body{{ContentType: "text/javascript", Schema: schema{"type": "string"}}, {ContentType: "image/svg+xml", Schema: schema{"type": "string"}}}}}, Errors: []string{errand.ENOTFOUND}},

	"POST /v1/jobs": {ID: "submitJob", Tag: "Jobs", Summary: "Submit a job", Description: "Answers `202 Accepted` once the job is stored, with its URL in `Location` and when to poll in `Retry-After`. With `Prefer: wait=N` (or the operation's `wait`), a job that finishes in time is answered `200` with its result.",
		Headers: []Param{hIdemKey, hPrefer}, Body: &Body{Schema: ref("Submit"), Required: true},
		Answers: submitAnswers("Job"), Errors: submitErrors},
	"POST /v1/job-batches": {ID: "submitJobs", Tag: "Jobs", Summary: "Submit many jobs in one commit", Description: "Each job is accepted or refused on its own: `202` when at least one was accepted, `422` when none was.",
		Body:    jsonBody("SubmitBatch", "Jobs as POST /v1/jobs takes them, each with its own idempotency key."),
		Answers: []Answer{ok(202, "Each job, or why it was refused (rate_limited: each job counts against its operation's rate_limit; queue_full: beyond its max_queued).", "SubmittedList", "RateLimit", "RateLimit-Policy")}, Errors: []string{errand.EINVALID, errand.EOPNOTFOUND, errand.EIDEMPOTENCY, errand.EQUEUEFULL, errand.ESTORAGEFULL}},
	"GET /v1/jobs": {ID: "listJobs", Tag: "Jobs", Summary: "List jobs, newest first", Description: "Only the jobs the caller may read.",
		Query:   []Param{{Name: "operation", Description: "Only this operation's jobs.", Schema: schema{"type": "string"}}, {Name: "status", Description: "Only jobs in this status.", Schema: ref("JobStatus")}, qLimit, qCursor},
		Answers: []Answer{ok(200, "A page of jobs.", "JobList")}, Errors: []string{errand.EINVALID, errand.ECURSOR}},
	"GET /v1/jobs/{id}": {ID: "getJob", Tag: "Jobs", Summary: "Get a job", Description: "`Retry-After` says when to poll again while it runs; `Prefer: wait=N` long-polls until it finishes.",
		Headers: []Param{{Name: "Prefer", Description: "`wait=N` waits up to N seconds (capped by http.max_wait) for the job to finish.", Schema: schema{"type": "string"}, Example: "wait=30"}},
		Answers: []Answer{ok(200, "The job.", "Job", "Retry-After")}, Errors: []string{errand.EJOBNOTFOUND}},
	"DELETE /v1/jobs/{id}":      {ID: "deleteJob", Tag: "Jobs", Summary: "Forget a finished job", Answers: []Answer{{Status: 204, Description: "Deleted, with its artifacts."}}, Errors: []string{errand.EJOBNOTFOUND, errand.ENOTTERMINAL}},
	"POST /v1/jobs/{id}/cancel": {ID: "cancelJob", Tag: "Jobs", Summary: "Cancel a job", Description: "A job not started is canceled; a running one gets `cancel_requested: true`, which its worker learns on its next heartbeat.", Answers: []Answer{ok(200, "The job.", "Job")}, Errors: []string{errand.EJOBNOTFOUND, errand.ECONFLICT}},
	"POST /v1/jobs/{id}/retry":  {ID: "retryJob", Tag: "Jobs", Summary: "Run a failed or canceled job again", Answers: []Answer{ok(202, "The job, queued again.", "Job", "Location")}, Errors: []string{errand.EJOBNOTFOUND, errand.ECONFLICT}},
	"GET /v1/jobs/{id}/events": {ID: "jobEvents", Tag: "Events", Summary: "A job's events: a stream or a page", Description: "With `Accept: text/event-stream` (as EventSource sends): the job's events from its start (or after `Last-Event-ID` / `?after=`), then live until its terminal event; a finished job whose events were all seen answers `204`. Otherwise a JSON page.",
		Access: Stream, Query: []Param{qAfter, qLimit, qTicket}, Headers: []Param{hAccept, hLastEvent},
		Answers: []Answer{{Status: 200, Description: "The events.", ContentType: "application/json", Schema: ref("EventList"), Alt: []Body{sse}}, {Status: 204, Description: "The job has finished and every event was seen: EventSource stops reconnecting."}},
		Errors:  []string{errand.EJOBNOTFOUND, errand.ECURSOR, errand.EINVALID, errand.ERATELIMITED}},
	"GET /v1/jobs/{id}/artifacts/{name}": {ID: "getArtifact", Tag: "Jobs", Summary: "Download an artifact of a job", Answers: []Answer{{Status: 200, Description: "The file, with the content type its worker gave.", ContentType: "application/octet-stream", Schema: schema{"type": "string", "contentMediaType": "application/octet-stream"}}}, Errors: []string{errand.EJOBNOTFOUND, errand.ENOTFOUND}},
	"GET /v1/operations":                 {ID: "listOperations", Tag: "Jobs", Summary: "The operations the caller may submit or lease", Answers: []Answer{ok(200, "The operations, with their schemas.", "OperationList")}},
	"GET /v1/operations/{name}":          {ID: "getOperation", Tag: "Jobs", Summary: "One operation", Answers: []Answer{ok(200, "The operation.", "Operation")}, Errors: []string{errand.EOPNOTFOUND}},
	"POST /v1/operations/{name}/pause":   {ID: "pauseOperation", Tag: "Jobs", Summary: "Pause an operation's leases on every node (operations:pause@*)", Description: "Submits are still accepted and wait queued; running jobs run on; no worker (pull or errand's own) is handed a job until it is resumed. The state is stored: it holds after restarts. Audited.", Answers: []Answer{ok(200, "The operation, paused.", "Operation")}, Errors: []string{errand.EOPNOTFOUND}},
	"POST /v1/operations/{name}/resume":  {ID: "resumeOperation", Tag: "Jobs", Summary: "Resume a paused operation (operations:pause@*)", Description: "Waiting workers on every node are woken. Audited.", Answers: []Answer{ok(200, "The operation, resumed.", "Operation")}, Errors: []string{errand.EOPNOTFOUND}},

	"GET /v1/ws": {ID: "webSocket", Tag: "Events", Summary: "The WebSocket API (sub-protocol errand.v1)", Description: "Upgrade to a WebSocket with `Sec-WebSocket-Protocol: errand.v1`: one connection subscribes to channels and jobs, publishes and submits (see the AsyncAPI document, /v1/asyncapi.json).",
		Access: Stream, Query: []Param{qTicket}, Headers: []Param{{Name: "Sec-WebSocket-Protocol", Description: "Must offer errand.v1.", Required: true, Schema: schema{"type": "string", "const": "errand.v1"}}},
		Answers: []Answer{{Status: 101, Description: "Switching to the WebSocket protocol errand.v1."}}, Errors: []string{errand.ERATELIMITED}},
	"GET /v1/channels": {ID: "listChannels", Tag: "Channels", Summary: "The declared channels the caller may see", Answers: []Answer{ok(200, "The channels.", "ChannelList")}},
	"POST /v1/channels/{channel}/events": {ID: "publish", Tag: "Channels", Summary: "Publish an event to a channel", Description: "Answered once the event is stored.",
		Body: jsonBody("PublishRequest", "The event's type and data (checked against the channel's schema, if it declares one)."), Answers: []Answer{ok(202, "Stored: its cursor.", "Published")}, Errors: []string{errand.ECHANNELNOTFOUND, errand.ESTORAGEFULL}},
	"GET /v1/channels/{channel}/events": {ID: "channelEvents", Tag: "Channels", Summary: "A channel's events: a stream or its history", Description: "With `Accept: text/event-stream`: live events (or a replay from `Last-Event-ID`, `?after=` or `?last=`), then live. Otherwise a JSON page of its history.",
		Access: Stream, Query: []Param{qAfter, qLast, qLimit, qTicket}, Headers: []Param{hAccept, hLastEvent},
		Answers: []Answer{{Status: 200, Description: "The events.", ContentType: "application/json", Schema: ref("EventList"), Alt: []Body{sse}}},
		Errors:  []string{errand.ECHANNELNOTFOUND, errand.ECURSOR, errand.EINVALID, errand.ERATELIMITED}},

	"POST /v1/webhooks":                    {ID: "createEndpoint", Tag: "Webhooks", Summary: "Subscribe a URL to events", Body: jsonBody("EndpointRequest", "The URL and the events it gets."), Answers: []Answer{ok(201, "The endpoint, with its signing secret (shown this once).", "EndpointWithSecret", "Location")}, Errors: []string{errand.EINVALID}},
	"GET /v1/webhooks":                     {ID: "listEndpoints", Tag: "Webhooks", Summary: "The tenant's endpoints", Answers: []Answer{ok(200, "The endpoints.", "EndpointList")}},
	"GET /v1/webhooks/{id}":                {ID: "getEndpoint", Tag: "Webhooks", Summary: "One endpoint", Answers: []Answer{ok(200, "The endpoint.", "Endpoint")}, Errors: []string{errand.ENOTFOUND}},
	"PATCH /v1/webhooks/{id}":              {ID: "updateEndpoint", Tag: "Webhooks", Summary: "Change an endpoint (disable, enable, its events, its URL)", Body: jsonBody("EndpointRequest", "The fields to change."), Answers: []Answer{ok(200, "The endpoint.", "Endpoint")}, Errors: []string{errand.ENOTFOUND, errand.EINVALID}},
	"DELETE /v1/webhooks/{id}":             {ID: "deleteEndpoint", Tag: "Webhooks", Summary: "Delete an endpoint", Answers: []Answer{{Status: 204, Description: "Deleted."}}, Errors: []string{errand.ENOTFOUND}},
	"POST /v1/webhooks/{id}/rotate-secret": {ID: "rotateEndpointSecret", Tag: "Webhooks", Summary: "A new signing secret (the old one signs too, for 24 h)", Answers: []Answer{ok(200, "The endpoint with its new secret.", "EndpointWithSecret")}, Errors: []string{errand.ENOTFOUND}},
	"POST /v1/webhooks/{id}/recover":       {ID: "recoverEndpoint", Tag: "Webhooks", Summary: "Send again what failed since a time", Body: jsonBody("RecoverRequest", "Since when."), Answers: []Answer{ok(202, "How many deliveries are sent again.", "Recovered")}, Errors: []string{errand.ENOTFOUND}},
	"GET /v1/webhooks/{id}/deliveries":     {ID: "listEndpointDeliveries", Tag: "Webhooks", Summary: "An endpoint's deliveries, newest first", Query: []Param{{Name: "status", Description: "Only deliveries in this status.", Schema: schema{"enum": []string{"pending", "succeeded", "failed"}}}, qLimit, qCursor}, Answers: []Answer{ok(200, "A page of deliveries.", "DeliveryList")}, Errors: []string{errand.ENOTFOUND, errand.ECURSOR, errand.EINVALID}},
	"GET /v1/deliveries":                   {ID: "listDeliveries", Tag: "Webhooks", Summary: "Deliveries of a job (?job_id=), newest first", Query: []Param{{Name: "job_id", Description: "The job whose deliveries to list.", Schema: schema{"type": "string"}}, {Name: "status", Description: "Only deliveries in this status.", Schema: schema{"enum": []string{"pending", "succeeded", "failed"}}}, qLimit, qCursor}, Answers: []Answer{ok(200, "A page of deliveries.", "DeliveryList")}, Errors: []string{errand.ECURSOR, errand.EINVALID}},
	"GET /v1/deliveries/{id}":              {ID: "getDelivery", Tag: "Webhooks", Summary: "One delivery, with its attempts", Answers: []Answer{ok(200, "The delivery.", "Delivery")}, Errors: []string{errand.ENOTFOUND}},
	"POST /v1/deliveries/{id}/redeliver":   {ID: "redeliver", Tag: "Webhooks", Summary: "Send a delivery again (same webhook-id)", Answers: []Answer{ok(202, "The delivery.", "Delivery")}, Errors: []string{errand.ENOTFOUND}},
	"GET /v1/callback-secret":              {ID: "getCallbackSecret", Tag: "Webhooks", Summary: "The tenant's secret for callback_url deliveries (made on first use)", Answers: []Answer{ok(200, "The secret.", "CallbackSecret")}},
	"POST /v1/callback-secret/rotate":      {ID: "rotateCallbackSecret", Tag: "Webhooks", Summary: "A new callback secret (the old one signs too, for 24 h)", Answers: []Answer{ok(200, "The new secret.", "CallbackSecret")}},

	"POST /v1/oauth/token": {ID: "token", Tag: "Auth", Summary: "OAuth 2.0 token endpoint (client credentials)", Description: "An API key's id and token are the client id and secret (HTTP Basic or in the form). Errors are RFC 6749 §5.2 JSON, not problems: OAuth clients parse that shape.",
		Access: Public, Body: &Body{ContentType: "application/x-www-form-urlencoded", Schema: ref("TokenRequest"), Required: true},
		Answers: []Answer{ok(200, "An access token.", "AccessToken"), {Status: 400, Description: "invalid_request, unsupported_grant_type, invalid_scope.", Schema: ref("OAuthError")}, {Status: 401, Description: "invalid_client.", Schema: ref("OAuthError")}}},
	"GET /.well-known/jwks.json": {ID: "jwks", Tag: "Auth", Summary: "The public keys errand's access tokens are signed with", Access: Public, Answers: []Answer{{Status: 200, Description: "A JSON Web Key Set.", ContentType: "application/jwk-set+json", Schema: ref("JWKS")}}},
	"POST /v1/oauth/rotate-key":  {ID: "rotateSigningKey", Tag: "Auth", Summary: "A new signing key for access tokens (oauth:rotate-key@*)", Answers: []Answer{ok(200, "The new key's id.", "KeyID")}},
	"POST /v1/tickets":           {ID: "createTicket", Tag: "Auth", Summary: "A single-use ticket for an event stream (EventSource, WebSocket)", Answers: []Answer{ok(201, "The ticket: use it once, soon, as ?ticket=.", "Ticket")}},
	"POST /v1/keys":              {ID: "createKey", Tag: "Auth", Summary: "Make an API key (only with roles you hold)", Body: jsonBody("KeyRequest", "The key's name, roles, tenant and lifetime."), Answers: []Answer{ok(201, "The key, with its token (shown this once).", "CreatedKey")}, Errors: []string{errand.EINVALID}},
	"GET /v1/keys":               {ID: "listKeys", Tag: "Auth", Summary: "The tenant's API keys", Answers: []Answer{ok(200, "The keys (never their tokens).", "KeyList")}},
	"DELETE /v1/keys/{id}":       {ID: "revokeKey", Tag: "Auth", Summary: "Revoke an API key (at once, on every node)", Answers: []Answer{ok(200, "The key, revoked.", "APIKey")}, Errors: []string{errand.ENOTFOUND}},
	"GET /v1/audit":              {ID: "audit", Tag: "Auth", Summary: "The audit log, newest first", Query: []Param{qLimit, {Name: "action", Description: "Only this action.", Schema: schema{"type": "string"}}, {Name: "subject", Description: "Only this subject's entries.", Schema: schema{"type": "string"}}, {Name: "outcome", Description: "Only this outcome.", Schema: schema{"enum": []string{"ok", "denied", "failed"}}}, {Name: "after", Description: "Only entries after this id.", Schema: schema{"type": "string"}}, {Name: "before", Description: "Only entries before this id (the next page: next_cursor).", Schema: schema{"type": "string"}}}, Answers: []Answer{ok(200, "A page of entries.", "AuditPage")}, Errors: []string{errand.ECURSOR, errand.EINVALID}},
	"GET /v1/bridges":            {ID: "listBridges", Tag: "Operations", Summary: "The broker bridges: state, cursors, lag, counters, last errors", Description: "Those acting in the caller's tenant with `bridges:read`; every bridge with `bridges:read@*`.", Answers: []Answer{ok(200, "The bridges.", "BridgeList")}},
	"GET /v1/usage": {ID: "usage", Tag: "Auth", Summary: "The tenant's usage, per operation and minute or hour (usage:read)", Description: "Jobs submitted, succeeded, failed and canceled, run time and queue wait percentiles, channel events published, webhook deliveries and artifact bytes, summed over every node. Another tenant's (`tenant=`) takes `usage:read@*`.",
		Query: []Param{{Name: "from", Description: "The first bucket's time, RFC 3339 (default: an hour before `to`, a day for `step=hour`).", Schema: schema{"type": "string", "format": "date-time"}},
			{Name: "to", Description: "Buckets starting before this time (default: now).", Schema: schema{"type": "string", "format": "date-time"}},
			{Name: "step", Description: "The buckets' width.", Schema: schema{"enum": []string{"minute", "hour"}, "default": "minute"}},
			{Name: "operation", Description: "Only this operation's usage.", Schema: schema{"type": "string"}},
			{Name: "tenant", Description: "Another tenant's usage (usage:read@*).", Schema: schema{"type": "string"}}},
		Answers: []Answer{ok(200, "The usage.", "UsageReport")}, Errors: []string{errand.EINVALID}},
	"GET /v1/me": {ID: "me", Tag: "Auth", Summary: "Who the caller is: subject, tenant, roles, permissions", Answers: []Answer{ok(200, "The principal.", "Principal")}},

	"POST /v1/leases": {ID: "lease", Tag: "Workers", Summary: "Lease jobs (long-polls up to wait_seconds)", Description: "`completions` (optional, the shape of `POST /v1/leases/complete`'s) finishes the worker's jobs in the same commit as the new leases: a worker taking one job at a time makes one request a job. Each is answered in `completed` (job id and status, or why it was refused); they are kept even when no job comes to lease. A request that fails may have completed them: send them again (one already completed answers `lease_expired` in its entry), or with `POST /v1/leases/complete`.", Access: Worker, Body: jsonBody("LeaseRequest", "Which operations, how many jobs, how long to wait and hold them; the jobs just finished."),
		Answers: []Answer{ok(200, "The leases (an empty list when no job came in time), and what became of each completion sent.", "LeaseList")}, Errors: []string{errand.EINVALID, errand.EOPNOTFOUND}},
	"POST /v1/leases/complete":             {ID: "completeLeases", Tag: "Workers", Summary: "Complete many leases in one commit", Access: Worker, Body: jsonBody("CompleteBatch", "The leases and their results."), Answers: []Answer{ok(200, "Each completion's job, or why it was refused (lease_expired, result_invalid).", "BatchResults")}, Errors: []string{errand.EINVALID}},
	"POST /v1/leases/{lease_id}/heartbeat": {ID: "heartbeat", Tag: "Workers", Summary: "Extend a lease and report progress", Access: Worker, Body: &Body{Schema: ref("Heartbeat")}, Answers: []Answer{ok(200, "Until when the lease holds, and whether to stop.", "HeartbeatResult")}, Errors: []string{errand.ELEASEEXPIRED, errand.EINVALID}},
	"POST /v1/leases/{lease_id}/complete":  {ID: "complete", Tag: "Workers", Summary: "Finish a leased job with its result", Description: "A result that does not match the operation's `result_schema` is refused with `422 result_invalid` and ends the attempt as failed: it is retried after the backoff while attempts are left, like any failed attempt, and never becomes the job's result.", Access: Worker, Body: &Body{Schema: ref("Complete")}, Answers: []Answer{ok(200, "The job, finished.", "Job")}, Errors: []string{errand.ELEASEEXPIRED, errand.ERESULTINVALID}},
	"POST /v1/leases/{lease_id}/fail":      {ID: "fail", Tag: "Workers", Summary: "End a leased attempt with an error (retried unless retry is false)", Access: Worker, Body: &Body{Schema: ref("FailRequest")}, Answers: []Answer{ok(200, "The job: waiting to retry, failed or canceled.", "Job")}, Errors: []string{errand.ELEASEEXPIRED, errand.EINVALID}},
	"POST /v1/leases/{lease_id}/release":   {ID: "release", Tag: "Workers", Summary: "Hand a leased job back (the attempt does not count)", Access: Worker, Answers: []Answer{ok(200, "The job, queued again.", "Job")}, Errors: []string{errand.ELEASEEXPIRED}},
	"PUT /v1/leases/{lease_id}/artifacts/{name}": {ID: "putArtifact", Tag: "Workers", Summary: "Upload an artifact of a leased job", Access: Worker,
		Body:    &Body{ContentType: "application/octet-stream", Schema: schema{"type": "string", "contentMediaType": "application/octet-stream"}, Required: true, Description: "The file; its Content-Type is kept."},
		Answers: []Answer{ok(201, "Stored.", "Artifact")}, Errors: []string{errand.ELEASEEXPIRED, errand.EINVALID, errand.ETOOLARGE, errand.ESTORAGEFULL}},
}

func doc(id, summary, contentType string) Route {
	return Route{ID: id, Tag: "Service", Summary: summary, Access: Public,
		Answers: []Answer{{Status: http.StatusOK, Description: summary + ".", ContentType: contentType, Schema: schema{"type": "string"}}}}
}

var submitErrors = []string{errand.EINVALID, errand.EOPNOTFOUND, errand.EIDEMPOTENCY, errand.ERATELIMITED, errand.EQUEUEFULL, errand.ESTORAGEFULL}

// submitAnswers are a submit's answers, the job described by jobSchema.
func submitAnswers(jobSchema string) []Answer {
	return []Answer{
		ok(202, "Stored; the job runs in the background. Poll Location after Retry-After seconds, or follow its events.", jobSchema, "Location", "Retry-After", "Idempotent-Replayed", "Preference-Applied", "RateLimit", "RateLimit-Policy"),
		ok(200, "The job finished within the wait it was submitted with (Prefer: wait=N or the operation's wait); or, with Errand-Duplicate-Of, the job that holds the submit's unique key (the operation's unique), answered instead of a new one.", jobSchema, "Location", "Idempotent-Replayed", "Preference-Applied", "Errand-Duplicate-Of", "RateLimit", "RateLimit-Policy"),
	}
}
