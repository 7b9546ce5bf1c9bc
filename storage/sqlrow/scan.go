package sqlrow

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// Row is one result row: *sql.Row, *sql.Rows, pgx.Row and pgx.Rows all are.
// Nullable columns scan into pointers (*int64, *string), which both
// database/sql and pgx set to nil for NULL.
type Row interface {
	Scan(dest ...any) error
}

// Rows is a query's result: pgx.Rows is one, *sql.Rows through a driver's
// adapter (its Close returns an error).
type Rows interface {
	Row
	Next() bool
	Err() error
	Close()
}

// Collect scans every row of a query with scan and closes them. err is the
// query's own (Collect returns it).
func Collect[T any](rows Rows, err error, scan func(Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// CollectBytes is Collect that stops once the rows scanned hold maxBytes
// (measured by size; 0: no bound): the rows after are never read.
func CollectBytes[T any](rows Rows, err error, maxBytes int64, scan func(Row) (T, error), size func(T) int64) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	budget, used := storage.ByteBudget(maxBytes), int64(0)
	for used < budget && rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		used += size(v)
	}
	return out, rows.Err()
}

// ScanID reads a one-column row of an id.
func ScanID(r Row) (string, error) {
	var id string
	return id, r.Scan(&id)
}

// ScanJob reads a row of JobColumns.
func ScanJob(r Row) (*errand.Job, error) {
	j := &errand.Job{}
	var status string
	var result, jerr, progress, metadata, artifacts []byte
	var created, runAt int64
	var started, finished, leaseExp, expires *int64
	var idem, trace, queueKey *string
	err := r.Scan(&j.ID, &j.Tenant, &j.Owner, &j.Operation, &status, &j.Input, &result, &jerr, &progress,
		&j.Attempt, &j.MaxAttempts, &j.Priority, &j.TimeoutSeconds, &j.CancelRequested, &metadata,
		&j.CallbackURL, &created, &runAt, &started, &finished, &j.LeaseToken, &leaseExp, &j.Worker, &idem,
		&j.RequestHash, &expires, &artifacts, &trace, &queueKey, &j.ConcurrencyKey, &j.FairKey)
	if err != nil {
		return nil, err
	}
	if queueKey != nil {
		j.QueueKey = *queueKey
	}
	if trace != nil {
		j.TraceParent = *trace
	}
	j.Status = errand.Status(status)
	if idem != nil {
		j.IdempotencyKey = *idem
	}
	j.CreatedAt, j.RunAt = storage.FromMicros(created), storage.FromMicros(runAt)
	j.StartedAt, j.FinishedAt = TimePtr(started), TimePtr(finished)
	j.LeaseExpiresAt, j.ExpiresAt = TimePtr(leaseExp), TimePtr(expires)
	if len(result) > 0 {
		j.Result = result
	}
	if err := storage.UnmarshalAll(jerr, &j.Error, progress, &j.Progress, metadata, &j.Metadata, artifacts, &j.Artifacts); err != nil {
		return nil, fmt.Errorf("job %s: %w", j.ID, err)
	}
	return j, nil
}

// ScanEvent reads a row of EventColumns.
func ScanEvent(r Row) (*errand.Event, error) {
	e := &errand.Event{}
	var t int64
	var exp *int64
	if err := r.Scan(&e.Seq, &e.Stream, &e.Tenant, &e.Type, &t, &e.Data, &exp); err != nil {
		return nil, err
	}
	e.Time, e.ExpiresAt = storage.FromMicros(t), TimePtr(exp)
	return e, nil
}

// ScanEndpoint reads a row of EndpointColumns.
func ScanEndpoint(r Row) (*errand.Endpoint, error) {
	e := &errand.Endpoint{}
	var events []byte
	var failing, prevExp *int64
	var created, updated int64
	err := r.Scan(&e.ID, &e.Tenant, &e.URL, &e.Description, &events, &e.Disabled, &e.DisabledReason, &e.RateLimit,
		&failing, &e.Secret, &e.PreviousSecret, &prevExp, &created, &updated)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(events, &e.Events); err != nil {
		return nil, fmt.Errorf("endpoint %s events: %w", e.ID, err)
	}
	e.FailingSince, e.PreviousExpiresAt = TimePtr(failing), TimePtr(prevExp)
	e.CreatedAt, e.UpdatedAt = storage.FromMicros(created), storage.FromMicros(updated)
	return e, nil
}

// ScanDelivery reads a row of DeliveryColumns.
func ScanDelivery(r Row) (*errand.Delivery, error) { return scanDelivery(r, false) }

// ScanDeliveryPayload reads a row of DeliveryColumns followed by the payload.
func ScanDeliveryPayload(r Row) (*errand.Delivery, error) { return scanDelivery(r, true) }

func scanDelivery(r Row, payload bool) (*errand.Delivery, error) {
	d := &errand.Delivery{}
	var status string
	var next, last *int64
	var created int64
	var trace *string
	dest := []any{&d.ID, &d.Tenant, &d.EndpointID, &d.URL, &d.JobID, &d.EventType, &status, &d.AttemptCount,
		&d.Step, &next, &last, &created, &trace}
	var body []byte
	if payload {
		dest = append(dest, &body)
	}
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	d.Status, d.CreatedAt = errand.DeliveryStatus(status), storage.FromMicros(created)
	d.NextAttemptAt, d.LastAttemptAt = TimePtr(next), TimePtr(last)
	if trace != nil {
		d.TraceParent = *trace
	}
	if len(body) > 0 {
		d.Payload = body
	}
	return d, nil
}

// Attempt is a row of AttemptColumns: an attempt and its delivery's id.
type Attempt struct {
	DeliveryID string
	errand.Attempt
}

// ScanAttempt reads a row of AttemptColumns.
func ScanAttempt(r Row) (Attempt, error) {
	var a Attempt
	var t, lat int64
	if err := r.Scan(&a.DeliveryID, &a.N, &t, &a.StatusCode, &lat, &a.Error, &a.Response); err != nil {
		return a, fmt.Errorf("scan attempt: %w", err)
	}
	a.Time, a.LatencyMS = storage.FromMicros(t), float64(lat)/1000
	return a, nil
}

// ScanAPIKey reads a row of APIKeyColumns.
func ScanAPIKey(r Row) (*errand.APIKey, error) {
	k := &errand.APIKey{}
	var roles []byte
	var created int64
	var exp, revoked, used *int64
	if err := r.Scan(&k.ID, &k.Hash, &k.Prefix, &k.Name, &k.Tenant, &roles, &k.CreatedBy, &created,
		&exp, &revoked, &used); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(roles, &k.Roles); err != nil {
		return nil, fmt.Errorf("api key %s roles: %w", k.ID, err)
	}
	k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsed = storage.FromMicros(created), TimePtr(exp), TimePtr(revoked), TimePtr(used)
	return k, nil
}

// ScanAudit reads a row of AuditColumns.
func ScanAudit(r Row) (*errand.AuditEntry, error) {
	e := &errand.AuditEntry{}
	var t int64
	if err := r.Scan(&e.Seq, &t, &e.Tenant, &e.Subject, &e.Action, &e.Resource, &e.Outcome, &e.Status,
		&e.Detail, &e.RequestID, &e.Remote); err != nil {
		return nil, err
	}
	e.Time = storage.FromMicros(t)
	return e, nil
}

// TimePtr is the time of Unix microseconds, or nil for NULL.
func TimePtr(us *int64) *time.Time {
	if us == nil {
		return nil
	}
	t := storage.FromMicros(*us)
	return &t
}
