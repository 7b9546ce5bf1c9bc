package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

const (
	endpointCols = `id, tenant, url, description, events, disabled, disabled_reason, rate_limit,
		failing_since, secret, previous_secret, previous_expires_at, created_at, updated_at`
	deliveryCols = `id, tenant, endpoint_id, url, job_id, event_type, status, attempt_count, step,
		next_attempt_at, last_attempt_at, created_at`

	qInsertEndpoint = `INSERT INTO webhook_endpoints (` + endpointCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qUpdateEndpoint = `UPDATE webhook_endpoints SET url = ?, description = ?, events = ?, disabled = ?,
		disabled_reason = ?, rate_limit = ?, failing_since = ?, secret = ?, previous_secret = ?,
		previous_expires_at = ?, updated_at = ? WHERE id = ?`
	qEndpointByID      = `SELECT ` + endpointCols + ` FROM webhook_endpoints WHERE id = ?`
	qGetEndpoint       = `SELECT ` + endpointCols + ` FROM webhook_endpoints WHERE id = ? AND tenant = ?`
	qInsertDelivery    = `INSERT INTO webhook_deliveries (` + deliveryCols + `, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qUpdateDelivery    = `UPDATE webhook_deliveries SET status = ?, attempt_count = ?, step = ?, next_attempt_at = ?, last_attempt_at = ? WHERE id = ?`
	qDeliveryByID      = `SELECT ` + deliveryCols + `, payload FROM webhook_deliveries WHERE id = ?`
	qGetDelivery       = `SELECT ` + deliveryCols + `, payload FROM webhook_deliveries WHERE id = ? AND tenant = ?`
	qInsertAttempt     = `INSERT INTO webhook_attempts (delivery_id, n, time, status_code, latency_us, error, response) VALUES (?, ?, ?, ?, ?, ?, ?)`
	qDueDeliveries     = `SELECT ` + deliveryCols + `, payload FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`
	qNextDelivery      = `SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'`
	qEndpointDelivered = `SELECT ` + deliveryCols + `, payload FROM webhook_deliveries WHERE endpoint_id = ? AND tenant = ?
		AND status = ? AND created_at >= ? ORDER BY id LIMIT ?`
	qExpiredDeliveries = `SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ? ORDER BY created_at LIMIT ?`
	qGetSettingTx      = `SELECT value FROM settings WHERE key = ?`
	qReplaceSetting    = `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
)

func (t *txn) InsertEndpoint(e *errand.Endpoint) error {
	t.changed(storage.ChangedEndpoints)
	events, _ := json.Marshal(nonNil(e.Events))
	_, err := t.w.conn.ExecContext(t.w.ctx, qInsertEndpoint, e.ID, e.Tenant, e.URL, e.Description, events,
		e.Disabled, e.DisabledReason, e.RateLimit, storage.MicrosPtr(e.FailingSince), e.Secret, e.PreviousSecret,
		storage.MicrosPtr(e.PreviousExpiresAt), storage.Micros(e.CreatedAt), storage.Micros(e.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert endpoint: %w", err)
	}
	return nil
}

func (t *txn) UpdateEndpoint(e *errand.Endpoint) error {
	t.changed(storage.ChangedEndpoints)
	events, _ := json.Marshal(nonNil(e.Events))
	res, err := t.w.conn.ExecContext(t.w.ctx, qUpdateEndpoint, e.URL, e.Description, events, e.Disabled,
		e.DisabledReason, e.RateLimit, storage.MicrosPtr(e.FailingSince), e.Secret, e.PreviousSecret,
		storage.MicrosPtr(e.PreviousExpiresAt), storage.Micros(e.UpdatedAt), e.ID)
	return affected(res, err, "update endpoint")
}

func (t *txn) DeleteEndpoint(tenant, id string) error {
	t.changed(storage.ChangedEndpoints)
	res, err := t.w.conn.ExecContext(t.w.ctx, `DELETE FROM webhook_endpoints WHERE id = ? AND tenant = ?`, id, tenant)
	if err := affected(res, err, "delete endpoint"); err != nil {
		return err
	}
	if _, err := t.w.conn.ExecContext(t.w.ctx, `DELETE FROM webhook_attempts WHERE delivery_id IN
		(SELECT id FROM webhook_deliveries WHERE endpoint_id = ?)`, id); err != nil {
		return fmt.Errorf("delete attempts: %w", err)
	}
	if _, err := t.w.conn.ExecContext(t.w.ctx, `DELETE FROM webhook_deliveries WHERE endpoint_id = ?`, id); err != nil {
		return fmt.Errorf("delete deliveries: %w", err)
	}
	return nil
}

func (t *txn) GetEndpoint(id string) (*errand.Endpoint, error) {
	return scanEndpoint(t.w.conn.QueryRowContext(t.w.ctx, qEndpointByID, id))
}

func (t *txn) InsertDelivery(d *errand.Delivery) error {
	_, err := t.w.stmts.insertDelivery.ExecContext(t.w.ctx, d.ID, d.Tenant, d.EndpointID, d.URL, d.JobID, d.EventType,
		string(d.Status), d.AttemptCount, d.Step, storage.MicrosPtr(d.NextAttemptAt), storage.MicrosPtr(d.LastAttemptAt),
		storage.Micros(d.CreatedAt), []byte(d.Payload))
	if err != nil {
		return fmt.Errorf("insert delivery: %w", err)
	}
	t.c.Deliveries = append(t.c.Deliveries, d)
	return nil
}

func (t *txn) UpdateDelivery(d *errand.Delivery) error {
	res, err := t.w.stmts.updateDelivery.ExecContext(t.w.ctx, string(d.Status), d.AttemptCount, d.Step,
		storage.MicrosPtr(d.NextAttemptAt), storage.MicrosPtr(d.LastAttemptAt), d.ID)
	return affected(res, err, "update delivery")
}

func (t *txn) GetDelivery(id string) (*errand.Delivery, error) {
	return scanDelivery(t.w.conn.QueryRowContext(t.w.ctx, qDeliveryByID, id), true)
}

func (t *txn) InsertAttempt(deliveryID string, a *errand.Attempt) error {
	_, err := t.w.stmts.insertAttempt.ExecContext(t.w.ctx, deliveryID, a.N, storage.Micros(a.Time), a.StatusCode,
		int64(a.LatencyMS*1000), a.Error, a.Response)
	if err != nil {
		return fmt.Errorf("insert attempt: %w", err)
	}
	return nil
}

func (t *txn) DueDeliveries(now time.Time, limit int) ([]*errand.Delivery, error) {
	return queryDeliveries(t.w.conn.QueryContext(t.w.ctx, qDueDeliveries, storage.Micros(now), limit))
}

func (t *txn) EndpointDeliveries(tenant, endpointID string, status errand.DeliveryStatus, since time.Time, limit int) ([]*errand.Delivery, error) {
	return queryDeliveries(t.w.conn.QueryContext(t.w.ctx, qEndpointDelivered, endpointID, tenant, string(status), storage.Micros(since), limit))
}

func (t *txn) ExpireDeliveries(before time.Time, limit int) (int, error) {
	ids, err := queryIDs(t.w.conn.QueryContext(t.w.ctx, qExpiredDeliveries, storage.Micros(before), limit))
	if err != nil {
		return 0, fmt.Errorf("expired deliveries: %w", err)
	}
	for _, id := range ids {
		if _, err := t.w.conn.ExecContext(t.w.ctx, `DELETE FROM webhook_attempts WHERE delivery_id = ?`, id); err != nil {
			return 0, fmt.Errorf("delete attempts: %w", err)
		}
		if _, err := t.w.conn.ExecContext(t.w.ctx, `DELETE FROM webhook_deliveries WHERE id = ?`, id); err != nil {
			return 0, fmt.Errorf("delete delivery: %w", err)
		}
	}
	return len(ids), nil
}

func (t *txn) GetSetting(key string) (string, error) {
	var v string
	err := t.w.conn.QueryRowContext(t.w.ctx, qGetSettingTx, key).Scan(&v)
	return v, interpretError(err)
}

func (t *txn) PutSetting(key, value string) error {
	if _, err := t.w.conn.ExecContext(t.w.ctx, qReplaceSetting, key, value); err != nil {
		return fmt.Errorf("put setting: %w", err)
	}
	return nil
}

// ListEndpoints reads a tenant's endpoints (every tenant's for "").
func (s *Store) ListEndpoints(ctx context.Context, tenant string) ([]*errand.Endpoint, error) {
	q, args := `SELECT `+endpointCols+` FROM webhook_endpoints ORDER BY id`, []any{}
	if tenant != "" {
		q, args = `SELECT `+endpointCols+` FROM webhook_endpoints WHERE tenant = ? ORDER BY id`, []any{tenant}
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	out, err := collect(rows, err, scanEndpoint)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	return out, nil
}

// GetEndpoint reads one endpoint of a tenant.
func (s *Store) GetEndpoint(ctx context.Context, tenant, id string) (*errand.Endpoint, error) {
	return scanEndpoint(s.rdb.QueryRowContext(ctx, qGetEndpoint, id, tenant))
}

// ListDeliveries reads deliveries newest first, without payloads.
func (s *Store) ListDeliveries(ctx context.Context, p storage.ListDeliveriesParams) ([]*errand.Delivery, error) {
	var where []string
	args := []any{}
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	add("tenant = ?", p.Tenant)
	if p.EndpointID != "" {
		add("endpoint_id = ?", p.EndpointID)
	}
	if p.JobID != "" {
		add("job_id = ?", p.JobID)
	}
	if p.Status != "" {
		add("status = ?", string(p.Status))
	}
	if p.Before != "" {
		add("id < ?", p.Before)
	}
	args = append(args, p.Limit)
	q := `SELECT ` + deliveryCols + ` FROM webhook_deliveries WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id DESC LIMIT ?`
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	out, err := collect(rows, err, func(r rowScanner) (*errand.Delivery, error) { return scanDelivery(r, false) })
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// GetDelivery reads one delivery of a tenant, with its payload.
func (s *Store) GetDelivery(ctx context.Context, tenant, id string) (*errand.Delivery, error) {
	return scanDelivery(s.rdb.QueryRowContext(ctx, qGetDelivery, id, tenant), true)
}

// ListAttempts reads the attempts of deliveries, oldest first.
func (s *Store) ListAttempts(ctx context.Context, ids []string) (map[string][]errand.Attempt, error) {
	out := make(map[string][]errand.Attempt, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	q := `SELECT delivery_id, n, time, status_code, latency_us, error, response FROM webhook_attempts
		WHERE delivery_id IN (?` + strings.Repeat(", ?", len(ids)-1) + `) ORDER BY delivery_id, n`
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
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
	return out, rows.Err()
}

// NextDelivery reads when the next pending delivery is due.
func (s *Store) NextDelivery(ctx context.Context) (time.Time, error) {
	var n sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, qNextDelivery).Scan(&n); err != nil {
		return time.Time{}, fmt.Errorf("next delivery: %w", err)
	}
	if !n.Valid {
		return time.Time{}, nil
	}
	return storage.FromMicros(n.Int64), nil
}

func scanEndpoint(row rowScanner) (*errand.Endpoint, error) {
	e := &errand.Endpoint{}
	var events []byte
	var failing, prevExp sql.NullInt64
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

func scanDelivery(row rowScanner, payload bool) (*errand.Delivery, error) {
	d := &errand.Delivery{}
	var status string
	var next, last sql.NullInt64
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

func queryDeliveries(rows *sql.Rows, err error) ([]*errand.Delivery, error) {
	return collect(rows, err, func(r rowScanner) (*errand.Delivery, error) { return scanDelivery(r, true) })
}

// affected turns an update that touched no row into ErrNotFound.
func affected(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
