package sqlrow

import "strings"

// The column lists, each in its scanner's order.
const (
	JobColumns = `id, tenant, owner, operation, status, input, result, error, progress, attempt,
	max_attempts, priority, timeout_seconds, cancel_requested, metadata, callback_url, created_at,
	run_at, started_at, finished_at, lease_token, lease_expires_at, worker, idempotency_key,
	request_hash, expires_at, artifacts, trace_parent, queue_key, concurrency_key, fair_key`
	EventColumns    = `seq, stream, tenant, type, time, data, expires_at`
	EndpointColumns = `id, tenant, url, description, events, disabled, disabled_reason, rate_limit,
	failing_since, secret, previous_secret, previous_expires_at, created_at, updated_at`
	// DeliveryColumns leave out the payload, which only some reads want (ScanDelivery).
	DeliveryColumns = `id, tenant, endpoint_id, url, job_id, event_type, status, attempt_count, step,
	next_attempt_at, last_attempt_at, created_at, trace_parent`
	AttemptColumns = `delivery_id, n, time, status_code, latency_us, error, response`
	APIKeyColumns  = `id, hash, prefix, name, tenant, roles, created_by, created_at, expires_at, revoked_at, last_used_at`
	AuditColumns   = `seq, time, tenant, subject, action, resource, outcome, status, detail, request_id, remote`
)

// Columns splits a column list into names (for COPY).
func Columns(list string) []string {
	return strings.Split(strings.Join(strings.Fields(list), ""), ",")
}

// Queries are the statements both drivers run, named as the methods that run
// them; Dialect.Queries renders them.
type Queries struct {
	InsertJob, UpdateJob, GetJob, GetTenantJob, JobByIdempotencyKey, DeleteJob, DeleteEvents, JobOwner string
	QueuedJobs, QueuedTenantJobs, CountRunning, ExpiredLeases, DueScheduled, ExpiredJobs               string
	NextScheduled, NextLeaseEnd                                                                        string
	InsertEvent, ListEvents, StreamFloor, ExpiredEvents, DeleteEvent, RaiseFloor, TailSeq              string
	GetSetting, PutSetting, Setting                                                                    string

	InsertEndpoint, UpdateEndpoint, GetEndpoint, GetTenantEndpoint, DeleteEndpoint              string
	DeleteEndpointAttempts, DeleteEndpointDeliveries, ListEndpoints, ListTenantEndpoints        string
	InsertDelivery, UpdateDelivery, GetDelivery, GetTenantDelivery, DueDeliveries, NextDelivery string
	EndpointDeliveries, ExpiredDeliveries, InsertAttempt                                        string

	InsertAPIKey, APIKeyByHash, GetAPIKey, UpdateAPIKey, TouchAPIKey, ListAPIKeys, ListTenantAPIKeys string
	InsertAudit, ExpireAudit, InsertTicket, TakeTicket, ExpireTickets                                string

	ListLog, BridgeCursor, PutBridgeCursor, SeenMessage, ExpireSeenMessages   string
	InsertBridgeReply, GetBridgeReply, DeleteBridgeReply, ExpireBridgeReplies string
}

// bodies are the shared statements with ? placeholders and the markers
// Render replaces.
var bodies = Queries{
	InsertJob: `INSERT INTO jobs (` + JobColumns + `) VALUES
		(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	UpdateJob: `UPDATE jobs SET status = ?, result = ?, error = ?, progress = ?, attempt = ?,
		max_attempts = ?, cancel_requested = ?, run_at = ?, started_at = ?, finished_at = ?,
		lease_token = ?, lease_expires_at = ?, worker = ?, expires_at = ?, artifacts = ? WHERE id = ?`,
	GetJob:              `SELECT ` + JobColumns + ` FROM jobs WHERE id = ?` + lockRow,
	GetTenantJob:        `SELECT ` + JobColumns + ` FROM jobs WHERE id = ? AND tenant = ?`,
	JobByIdempotencyKey: `SELECT ` + JobColumns + ` FROM jobs WHERE tenant = ? AND owner = ? AND idempotency_key = ?`,
	DeleteJob:           `DELETE FROM jobs WHERE id = ?`,
	DeleteEvents:        `DELETE FROM events WHERE stream = ?`,
	JobOwner:            `SELECT tenant, owner FROM jobs WHERE id = ?`,
	QueuedJobs: `SELECT ` + JobColumns + ` FROM jobs WHERE status = 'queued' AND operation = ?
		ORDER BY priority DESC, run_at, id LIMIT ?` + claimRows,
	QueuedTenantJobs: `SELECT ` + JobColumns + ` FROM jobs WHERE status = 'queued' AND tenant = ? AND operation = ?
		ORDER BY priority DESC, run_at, id LIMIT ?` + claimRows,
	CountRunning: `SELECT count(*) FROM jobs WHERE status = 'running' AND operation = ?`,
	ExpiredLeases: `SELECT ` + JobColumns + ` FROM jobs WHERE status = 'running' AND lease_expires_at < ?
		ORDER BY lease_expires_at LIMIT ?` + claimRows,
	DueScheduled: `SELECT ` + JobColumns + ` FROM jobs WHERE status = 'scheduled' AND run_at <= ?
		ORDER BY run_at LIMIT ?` + claimRows,
	ExpiredJobs:   `SELECT id FROM jobs WHERE expires_at IS NOT NULL AND expires_at < ? ORDER BY expires_at LIMIT ?` + claimRows,
	NextScheduled: `SELECT min(run_at) FROM jobs WHERE status = 'scheduled'`,
	NextLeaseEnd:  `SELECT min(lease_expires_at) FROM jobs WHERE status = 'running'`,

	InsertEvent: `INSERT INTO events (stream, tenant, type, time, data, expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq`,
	ListEvents: `SELECT ` + EventColumns + ` FROM events WHERE stream = ? AND tenant = ?
		AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
	StreamFloor: `SELECT floor FROM stream_floors WHERE tenant = ? AND stream = ?`,
	// TailSeq is the seq of a stream's (n+1)-th newest event (OFFSET n).
	TailSeq: `SELECT seq FROM events WHERE stream = ? AND tenant = ? ORDER BY seq DESC LIMIT 1 OFFSET ?`,
	ExpiredEvents: `SELECT seq, tenant, stream FROM events WHERE expires_at IS NOT NULL AND expires_at < ?
		ORDER BY expires_at LIMIT ?` + claimRows,
	DeleteEvent: `DELETE FROM events WHERE seq = ?`,
	RaiseFloor: `INSERT INTO stream_floors (tenant, stream, floor) VALUES (?, ?, ?)
		ON CONFLICT (tenant, stream) DO UPDATE SET floor = ` + greatest + `stream_floors.floor, excluded.floor)`,

	GetSetting: `SELECT value FROM settings WHERE key = ?` + lockRow,
	PutSetting: `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
	// Setting's "update" on a conflict writes the stored value back and
	// returns it: it waits for a concurrent caller's insert and sees it once
	// committed (DO NOTHING and a read in the same statement saw neither on
	// PostgreSQL, whose snapshot predates the other insert).
	Setting: `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = settings.value RETURNING value`,

	InsertEndpoint: `INSERT INTO webhook_endpoints (` + EndpointColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	UpdateEndpoint: `UPDATE webhook_endpoints SET url = ?, description = ?, events = ?, disabled = ?,
		disabled_reason = ?, rate_limit = ?, failing_since = ?, secret = ?, previous_secret = ?,
		previous_expires_at = ?, updated_at = ? WHERE id = ?`,
	GetEndpoint:       `SELECT ` + EndpointColumns + ` FROM webhook_endpoints WHERE id = ?` + lockRow,
	GetTenantEndpoint: `SELECT ` + EndpointColumns + ` FROM webhook_endpoints WHERE id = ? AND tenant = ?`,
	DeleteEndpoint:    `DELETE FROM webhook_endpoints WHERE id = ? AND tenant = ?`,
	DeleteEndpointAttempts: `DELETE FROM webhook_attempts WHERE delivery_id IN
		(SELECT id FROM webhook_deliveries WHERE endpoint_id = ?)`,
	DeleteEndpointDeliveries: `DELETE FROM webhook_deliveries WHERE endpoint_id = ?`,
	ListEndpoints:            `SELECT ` + EndpointColumns + ` FROM webhook_endpoints ORDER BY id`,
	ListTenantEndpoints:      `SELECT ` + EndpointColumns + ` FROM webhook_endpoints WHERE tenant = ? ORDER BY id`,
	InsertDelivery:           `INSERT INTO webhook_deliveries (` + DeliveryColumns + `, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	UpdateDelivery: `UPDATE webhook_deliveries SET status = ?, attempt_count = ?, step = ?, next_attempt_at = ?,
		last_attempt_at = ? WHERE id = ?`,
	GetDelivery:       `SELECT ` + DeliveryColumns + `, payload FROM webhook_deliveries WHERE id = ?` + lockRow,
	GetTenantDelivery: `SELECT ` + DeliveryColumns + `, payload FROM webhook_deliveries WHERE id = ? AND tenant = ?`,
	DueDeliveries: `SELECT ` + DeliveryColumns + `, payload FROM webhook_deliveries WHERE status = 'pending'
		AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?` + claimRows,
	NextDelivery: `SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'`,
	EndpointDeliveries: `SELECT ` + DeliveryColumns + `, payload FROM webhook_deliveries WHERE endpoint_id = ? AND tenant = ?
		AND status = ? AND created_at >= ? ORDER BY id LIMIT ?` + claimRows,
	ExpiredDeliveries: `SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ?
		ORDER BY created_at LIMIT ?` + claimRows,
	InsertAttempt: `INSERT INTO webhook_attempts (` + AttemptColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`,

	InsertAPIKey:      `INSERT INTO api_keys (` + APIKeyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	APIKeyByHash:      `SELECT ` + APIKeyColumns + ` FROM api_keys WHERE hash = ?`,
	GetAPIKey:         `SELECT ` + APIKeyColumns + ` FROM api_keys WHERE id = ?` + lockRow,
	UpdateAPIKey:      `UPDATE api_keys SET revoked_at = ?, last_used_at = ? WHERE id = ?`,
	TouchAPIKey:       `UPDATE api_keys SET last_used_at = ` + greatest + `coalesce(last_used_at, 0), ?) WHERE id = ?`,
	ListAPIKeys:       `SELECT ` + APIKeyColumns + ` FROM api_keys ORDER BY created_at, id`,
	ListTenantAPIKeys: `SELECT ` + APIKeyColumns + ` FROM api_keys WHERE tenant = ? ORDER BY created_at, id`,
	InsertAudit: `INSERT INTO audit_log (time, tenant, subject, action, resource, outcome, status, detail, request_id, remote)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
	ExpireAudit:  `DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE time < ? ORDER BY seq LIMIT ?)`,
	InsertTicket: `INSERT INTO tickets (hash, principal, expires_at) VALUES (?, ?, ?)`,
	TakeTicket:   `DELETE FROM tickets WHERE hash = ? RETURNING principal, expires_at`,
	ExpireTickets: `DELETE FROM tickets WHERE hash IN
		(SELECT hash FROM tickets WHERE expires_at <= ? LIMIT ?` + claimRows + `)`,

	// ListLog reads every stream in seq order, each job event with its job's
	// operation (a job's events share its id as their stream).
	ListLog: `SELECT e.seq, e.stream, e.tenant, e.type, e.time, e.data, e.expires_at, coalesce(j.operation, '')
		FROM events e LEFT JOIN jobs j ON j.id = e.stream WHERE e.seq > ? AND e.seq <= ? ORDER BY e.seq LIMIT ?`,
	BridgeCursor: `SELECT seq FROM bridge_cursors WHERE route = ?`,
	PutBridgeCursor: `INSERT INTO bridge_cursors (route, seq, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (route) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at
		WHERE bridge_cursors.seq < excluded.seq`,
	// SeenMessage changes a row only when it is new or its record expired:
	// none changed means a live record was there (a redelivery). The upsert
	// waits for a concurrent transaction's insert of the same id.
	SeenMessage: `INSERT INTO bridge_seen (scope, id, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (scope, id) DO UPDATE SET expires_at = excluded.expires_at WHERE bridge_seen.expires_at <= ?`,
	ExpireSeenMessages: `DELETE FROM bridge_seen WHERE (scope, id) IN
		(SELECT scope, id FROM bridge_seen WHERE expires_at <= ? LIMIT ?` + claimRows + `)`,
	InsertBridgeReply: `INSERT INTO bridge_replies (job_id, bridge, address, correlation, created_at) VALUES (?, ?, ?, ?, ?)`,
	GetBridgeReply:    `SELECT job_id, bridge, address, correlation, created_at FROM bridge_replies WHERE job_id = ?`,
	DeleteBridgeReply: `DELETE FROM bridge_replies WHERE job_id = ?`,
	ExpireBridgeReplies: `DELETE FROM bridge_replies WHERE job_id IN
		(SELECT job_id FROM bridge_replies WHERE created_at < ? LIMIT ?` + claimRows + `)`,
}

// cutBodies are the bodies of pages a dialect that cuts in SQL runs instead
// (Dialect.cutsInSQL): the same, cut at a byte budget (their last ?).
var cutBodies = Queries{
	QueuedJobs:       queuedJobs(`operation = ?`),
	QueuedTenantJobs: queuedJobs(`tenant = ? AND operation = ?`),
	ListEvents: CutByBytes(`SELECT seq, `+octets+`data) AS size FROM events WHERE stream = ? AND tenant = ?
		AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`, "events", "seq", EventColumns, "seq"),
}

// JobBytes is what a job row counts against a byte budget, as errand.Job.Bytes.
const JobBytes = octets + `input) + coalesce(` + octets + `result), 0)`

// CutByBytes is a page whose items hold at most a byte budget (the last ?):
// page selects, in order, each item's key and its size; an item is kept while
// those before it hold less than the budget (so the first always is), and only
// the kept ones are read whole (columns of table, in order). The page carries
// no more than keys and sizes, so what lies past the budget is never read.
func CutByBytes(page, table, key, columns, order string) string {
	return `WITH p AS (` + page + `),
		r AS (SELECT ` + key + `, sum(size) OVER (ORDER BY ` + order + ` ROWS UNBOUNDED PRECEDING) - size AS bytes_before FROM p)
		SELECT ` + columns + ` FROM ` + table + ` JOIN r USING (` + key + `) WHERE r.bytes_before < ? ORDER BY ` + order
}

// queuedJobs claims queued jobs matching cond (then operation's) in run order,
// up to a count and a byte budget: QueuedJobs' and QueuedTenantJobs' bodies.
// The rows claimed but past the budget stay queued; where rows lock they are
// locked until commit (the queue then wakes waiting workers).
func queuedJobs(cond string) string {
	const order = "priority DESC, run_at, id"
	return `WITH p AS (SELECT id, priority, run_at, ` + JobBytes + ` AS size FROM jobs WHERE status = 'queued' AND ` + cond +
		` ORDER BY ` + order + ` LIMIT ?` + claimRows + `),
		r AS (SELECT id, sum(size) OVER (ORDER BY ` + order + ` ROWS UNBOUNDED PRECEDING) - size AS bytes_before FROM p)
		SELECT ` + JobColumns + ` FROM jobs JOIN r USING (id) WHERE r.bytes_before < ? ORDER BY jobs.priority DESC, jobs.run_at, jobs.id`
}
