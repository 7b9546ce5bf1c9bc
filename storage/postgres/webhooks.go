package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	endpointCols = `id, tenant, url, description, events, disabled, disabled_reason, rate_limit,
		failing_since, secret, previous_secret, previous_expires_at, created_at, updated_at`
	deliveryCols = `id, tenant, endpoint_id, url, job_id, event_type, status, attempt_count, step,
		next_attempt_at, last_attempt_at, created_at`

	qInsertEndpoint = `INSERT INTO webhook_endpoints (` + endpointCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`
	qUpdateEndpoint = `UPDATE webhook_endpoints SET url = $1, description = $2, events = $3, disabled = $4,
		disabled_reason = $5, rate_limit = $6, failing_since = $7, secret = $8, previous_secret = $9,
		previous_expires_at = $10, updated_at = $11 WHERE id = $12`
	qEndpointByID      = `SELECT ` + endpointCols + ` FROM webhook_endpoints WHERE id = $1 FOR UPDATE`
	qGetEndpoint       = `SELECT ` + endpointCols + ` FROM webhook_endpoints WHERE id = $1 AND tenant = $2`
	qInsertDelivery    = `INSERT INTO webhook_deliveries (` + deliveryCols + `, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
	qUpdateDelivery    = `UPDATE webhook_deliveries SET status = $1, attempt_count = $2, step = $3, next_attempt_at = $4, last_attempt_at = $5 WHERE id = $6`
	qDeliveryByID      = `SELECT ` + deliveryCols + `, payload FROM webhook_deliveries WHERE id = $1 FOR UPDATE`
	qGetDelivery       = `SELECT ` + deliveryCols + `, payload FROM webhook_deliveries WHERE id = $1 AND tenant = $2`
	qInsertAttempt     = `INSERT INTO webhook_attempts (delivery_id, n, time, status_code, latency_us, error, response) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	qDueDeliveries     = `SELECT ` + deliveryCols + `, payload FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED`
	qNextDelivery      = `SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'`
	qEndpointDelivered = `SELECT ` + deliveryCols + `, payload FROM webhook_deliveries WHERE endpoint_id = $1 AND tenant = $2
		AND status = $3 AND created_at >= $4 ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED`
	qExpiredDeliveries = `SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED`
	qGetSettingTx      = `SELECT value FROM settings WHERE key = $1 FOR UPDATE`
	qReplaceSetting    = `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
)

// affected turns a change that touched no row into ErrNotFound.
func affected(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	return nil
}

func (t *txn) InsertEndpoint(e *errand.Endpoint) error {
	t.changed(storage.ChangedEndpoints)
	events, _ := json.Marshal(nonNil(e.Events))
	_, err := t.exec("insert endpoint", qInsertEndpoint, e.ID, e.Tenant, e.URL, e.Description, events,
		e.Disabled, e.DisabledReason, e.RateLimit, storage.MicrosPtr(e.FailingSince), e.Secret, e.PreviousSecret,
		storage.MicrosPtr(e.PreviousExpiresAt), storage.Micros(e.CreatedAt), storage.Micros(e.UpdatedAt))
	return err
}

func (t *txn) UpdateEndpoint(e *errand.Endpoint) error {
	t.changed(storage.ChangedEndpoints)
	events, _ := json.Marshal(nonNil(e.Events))
	return affected(t.exec("update endpoint", qUpdateEndpoint, e.URL, e.Description, events, e.Disabled,
		e.DisabledReason, e.RateLimit, storage.MicrosPtr(e.FailingSince), e.Secret, e.PreviousSecret,
		storage.MicrosPtr(e.PreviousExpiresAt), storage.Micros(e.UpdatedAt), e.ID))
}

func (t *txn) DeleteEndpoint(tenant, id string) error {
	t.changed(storage.ChangedEndpoints)
	if err := affected(t.exec("delete endpoint", `DELETE FROM webhook_endpoints WHERE id = $1 AND tenant = $2`, id, tenant)); err != nil {
		return err
	}
	if _, err := t.exec("delete attempts", `DELETE FROM webhook_attempts WHERE delivery_id IN
		(SELECT id FROM webhook_deliveries WHERE endpoint_id = $1)`, id); err != nil {
		return err
	}
	_, err := t.exec("delete deliveries", `DELETE FROM webhook_deliveries WHERE endpoint_id = $1`, id)
	return err
}

func (t *txn) GetEndpoint(id string) (*errand.Endpoint, error) {
	return scanEndpoint(t.queryRow(qEndpointByID, id))
}

func (t *txn) InsertDelivery(d *errand.Delivery) error {
	_, err := t.exec("insert delivery", qInsertDelivery, d.ID, d.Tenant, d.EndpointID, d.URL, d.JobID, d.EventType,
		string(d.Status), d.AttemptCount, d.Step, storage.MicrosPtr(d.NextAttemptAt), storage.MicrosPtr(d.LastAttemptAt),
		storage.Micros(d.CreatedAt), []byte(d.Payload))
	if err == nil {
		t.c.Deliveries = append(t.c.Deliveries, d)
	}
	return err
}

func (t *txn) UpdateDelivery(d *errand.Delivery) error {
	return affected(t.exec("update delivery", qUpdateDelivery, string(d.Status), d.AttemptCount, d.Step,
		storage.MicrosPtr(d.NextAttemptAt), storage.MicrosPtr(d.LastAttemptAt), d.ID))
}

func (t *txn) GetDelivery(id string) (*errand.Delivery, error) {
	return scanDelivery(t.queryRow(qDeliveryByID, id), true)
}

func (t *txn) InsertAttempt(deliveryID string, a *errand.Attempt) error {
	_, err := t.exec("insert attempt", qInsertAttempt, deliveryID, a.N, storage.Micros(a.Time), a.StatusCode,
		int64(a.LatencyMS*1000), a.Error, a.Response)
	return err
}

func (t *txn) DueDeliveries(now time.Time, limit int) ([]*errand.Delivery, error) {
	return queryDeliveries(t.query(qDueDeliveries, storage.Micros(now), limit))
}

func (t *txn) EndpointDeliveries(tenant, endpointID string, status errand.DeliveryStatus, since time.Time, limit int) ([]*errand.Delivery, error) {
	return queryDeliveries(t.query(qEndpointDelivered, endpointID, tenant, string(status), storage.Micros(since), limit))
}

func (t *txn) ExpireDeliveries(before time.Time, limit int) (int, error) {
	ids, err := queryIDs(t.query(qExpiredDeliveries, storage.Micros(before), limit))
	if err != nil {
		return 0, fmt.Errorf("expired deliveries: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	if _, err := t.exec("delete attempts", `DELETE FROM webhook_attempts WHERE delivery_id = ANY($1)`, ids); err != nil {
		return 0, err
	}
	if _, err := t.exec("delete deliveries", `DELETE FROM webhook_deliveries WHERE id = ANY($1)`, ids); err != nil {
		return 0, err
	}
	return len(ids), nil
}

func (t *txn) GetSetting(key string) (string, error) {
	var v string
	err := t.queryRow(qGetSettingTx, key).Scan(&v)
	return v, interpretError(err)
}

func (t *txn) PutSetting(key, value string) error {
	_, err := t.exec("put setting", qReplaceSetting, key, value)
	return err
}

// ListEndpoints reads a tenant's endpoints (every tenant's for "").
func (s *Store) ListEndpoints(ctx context.Context, tenant string) ([]*errand.Endpoint, error) {
	w := where{}
	if tenant != "" {
		w.add("tenant = ", tenant)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE `+w.sql()+` ORDER BY id`, w.args...)
	out, err := collect(rows, err, scanEndpoint)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	return out, nil
}

// GetEndpoint reads one endpoint of a tenant.
func (s *Store) GetEndpoint(ctx context.Context, tenant, id string) (*errand.Endpoint, error) {
	return scanEndpoint(s.pool.QueryRow(ctx, qGetEndpoint, id, tenant))
}

// ListDeliveries reads deliveries newest first, without payloads.
func (s *Store) ListDeliveries(ctx context.Context, p storage.ListDeliveriesParams) ([]*errand.Delivery, error) {
	w := where{}
	w.add("tenant = ", p.Tenant)
	if p.EndpointID != "" {
		w.add("endpoint_id = ", p.EndpointID)
	}
	if p.JobID != "" {
		w.add("job_id = ", p.JobID)
	}
	if p.Status != "" {
		w.add("status = ", string(p.Status))
	}
	if p.Before != "" {
		w.add("id < ", p.Before)
	}
	q := `SELECT ` + deliveryCols + ` FROM webhook_deliveries WHERE ` + w.sql() + ` ORDER BY id DESC LIMIT ` + w.arg(p.Limit)
	rows, err := s.pool.Query(ctx, q, w.args...)
	out, err := collect(rows, err, func(r pgx.Row) (*errand.Delivery, error) { return scanDelivery(r, false) })
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// GetDelivery reads one delivery of a tenant, with its payload.
func (s *Store) GetDelivery(ctx context.Context, tenant, id string) (*errand.Delivery, error) {
	return scanDelivery(s.pool.QueryRow(ctx, qGetDelivery, id, tenant), true)
}

// ListAttempts reads the attempts of deliveries, oldest first.
func (s *Store) ListAttempts(ctx context.Context, ids []string) (map[string][]errand.Attempt, error) {
	out := make(map[string][]errand.Attempt, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT delivery_id, n, time, status_code, latency_us, error, response
		FROM webhook_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, n`, ids)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", interpretError(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a errand.Attempt
		var t, lat int64
		if err := rows.Scan(&id, &a.N, &t, &a.StatusCode, &lat, &a.Error, &a.Response); err != nil {
			return nil, fmt.Errorf("scan attempt: %w", err)
		}
		a.Time, a.LatencyMS = storage.FromMicros(t), float64(lat)/1000
		out[id] = append(out[id], a)
	}
	return out, interpretError(rows.Err())
}

// NextDelivery reads when the next pending delivery is due.
func (s *Store) NextDelivery(ctx context.Context) (time.Time, error) {
	var n *int64
	if err := s.pool.QueryRow(ctx, qNextDelivery).Scan(&n); err != nil {
		return time.Time{}, fmt.Errorf("next delivery: %w", interpretError(err))
	}
	if n == nil {
		return time.Time{}, nil
	}
	return storage.FromMicros(*n), nil
}

func scanEndpoint(row pgx.Row) (*errand.Endpoint, error) {
	e := &errand.Endpoint{}
	var events []byte
	var failing, prevExp *int64
	var created, updated int64
	err := row.Scan(&e.ID, &e.Tenant, &e.URL, &e.Description, &events, &e.Disabled, &e.DisabledReason, &e.RateLimit,
		&failing, &e.Secret, &e.PreviousSecret, &prevExp, &created, &updated)
	if err != nil {
		return nil, interpretError(err)
	}
	if err := json.Unmarshal(events, &e.Events); err != nil {
		return nil, fmt.Errorf("endpoint %s events: %w", e.ID, err)
	}
	e.FailingSince, e.PreviousExpiresAt = timePtr(failing), timePtr(prevExp)
	e.CreatedAt, e.UpdatedAt = storage.FromMicros(created), storage.FromMicros(updated)
	return e, nil
}

func scanDelivery(row pgx.Row, payload bool) (*errand.Delivery, error) {
	d := &errand.Delivery{}
	var status string
	var next, last *int64
	var created int64
	dest := []any{&d.ID, &d.Tenant, &d.EndpointID, &d.URL, &d.JobID, &d.EventType, &status, &d.AttemptCount,
		&d.Step, &next, &last, &created}
	var body []byte
	if payload {
		dest = append(dest, &body)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, interpretError(err)
	}
	d.Status, d.CreatedAt = errand.DeliveryStatus(status), storage.FromMicros(created)
	d.NextAttemptAt, d.LastAttemptAt = timePtr(next), timePtr(last)
	if len(body) > 0 {
		d.Payload = body
	}
	return d, nil
}

func queryDeliveries(rows pgx.Rows, err error) ([]*errand.Delivery, error) {
	return collect(rows, err, func(r pgx.Row) (*errand.Delivery, error) { return scanDelivery(r, true) })
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
