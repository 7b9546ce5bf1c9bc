package sqlrow

import (
	"encoding/json"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// JobJSON is a job's JSON columns, encoded (nil for NULL).
type JobJSON struct {
	Error, Progress, Metadata, Artifacts []byte
}

// EncodeJob encodes j's JSON columns; a value that does not encode is an
// error for the write that carries it.
func EncodeJob(j *errand.Job) (JobJSON, error) {
	var c JobJSON
	var err error
	if c.Error, err = storage.JSONOrNil(j.Error); err != nil {
		return c, err
	}
	if c.Progress, err = storage.JSONOrNil(j.Progress); err != nil {
		return c, err
	}
	if c.Metadata, err = storage.JSONOrNil(j.Metadata); err != nil {
		return c, err
	}
	c.Artifacts, err = storage.JSONOrNil(j.Artifacts)
	return c, err
}

// IdempotencyKey is j's key, or nil (NULL) when it has none: the unique
// index holds only jobs with a key.
func IdempotencyKey(j *errand.Job) *string {
	if j.IdempotencyKey == "" {
		return nil
	}
	k := j.IdempotencyKey
	return &k
}

// TraceParent is j's trace context, or nil (NULL) when it has none.
func TraceParent(j *errand.Job) *string {
	if j.TraceParent == "" {
		return nil
	}
	tp := j.TraceParent
	return &tp
}

// QueueKey is j's queue key, or nil (NULL) when it has none.
func QueueKey(j *errand.Job) *string {
	if j.QueueKey == "" {
		return nil
	}
	k := j.QueueKey
	return &k
}

// JobInsertArgs are the arguments of Queries.InsertJob (in JobColumns' order).
func JobInsertArgs(j *errand.Job) ([]any, error) {
	c, err := EncodeJob(j)
	if err != nil {
		return nil, err
	}
	return []any{j.ID, j.Tenant, j.Owner, j.Operation, string(j.Status), []byte(j.Input), storage.NullBytes(j.Result),
		storage.NullBytes(c.Error), storage.NullBytes(c.Progress), j.Attempt, j.MaxAttempts, j.Priority, j.TimeoutSeconds,
		j.CancelRequested, storage.NullBytes(c.Metadata), j.CallbackURL, storage.Micros(j.CreatedAt), storage.Micros(j.RunAt),
		storage.MicrosPtr(j.StartedAt), storage.MicrosPtr(j.FinishedAt), j.LeaseToken, storage.MicrosPtr(j.LeaseExpiresAt),
		j.Worker, storage.NullString(j.IdempotencyKey), j.RequestHash, storage.MicrosPtr(j.ExpiresAt),
		storage.NullBytes(c.Artifacts), storage.NullString(j.TraceParent), storage.NullString(j.QueueKey), j.ConcurrencyKey, j.FairKey}, nil
}

// JobUpdateArgs are the arguments of Queries.UpdateJob.
func JobUpdateArgs(j *errand.Job) ([]any, error) {
	c, err := EncodeJob(j)
	if err != nil {
		return nil, err
	}
	return []any{string(j.Status), storage.NullBytes(j.Result), storage.NullBytes(c.Error), storage.NullBytes(c.Progress),
		j.Attempt, j.MaxAttempts, j.CancelRequested, storage.Micros(j.RunAt), storage.MicrosPtr(j.StartedAt),
		storage.MicrosPtr(j.FinishedAt), j.LeaseToken, storage.MicrosPtr(j.LeaseExpiresAt), j.Worker,
		storage.MicrosPtr(j.ExpiresAt), storage.NullBytes(c.Artifacts), j.ID}, nil
}

// EventArgs are the arguments of Queries.InsertEvent.
func EventArgs(e *errand.Event) []any {
	return []any{e.Stream, e.Tenant, e.Type, storage.Micros(e.Time), []byte(e.Data), storage.MicrosPtr(e.ExpiresAt)}
}

// EndpointInsertArgs are the arguments of Queries.InsertEndpoint.
func EndpointInsertArgs(e *errand.Endpoint) []any {
	return []any{e.ID, e.Tenant, e.URL, e.Description, stringsJSON(e.Events), e.Disabled, e.DisabledReason, e.RateLimit,
		storage.MicrosPtr(e.FailingSince), e.Secret, e.PreviousSecret, storage.MicrosPtr(e.PreviousExpiresAt),
		storage.Micros(e.CreatedAt), storage.Micros(e.UpdatedAt)}
}

// EndpointUpdateArgs are the arguments of Queries.UpdateEndpoint.
func EndpointUpdateArgs(e *errand.Endpoint) []any {
	return []any{e.URL, e.Description, stringsJSON(e.Events), e.Disabled, e.DisabledReason, e.RateLimit,
		storage.MicrosPtr(e.FailingSince), e.Secret, e.PreviousSecret, storage.MicrosPtr(e.PreviousExpiresAt),
		storage.Micros(e.UpdatedAt), e.ID}
}

// DeliveryInsertArgs are the arguments of Queries.InsertDelivery.
func DeliveryInsertArgs(d *errand.Delivery) []any {
	return []any{d.ID, d.Tenant, d.EndpointID, d.URL, d.JobID, d.EventType, string(d.Status), d.AttemptCount, d.Step,
		storage.MicrosPtr(d.NextAttemptAt), storage.MicrosPtr(d.LastAttemptAt), storage.Micros(d.CreatedAt),
		storage.NullString(d.TraceParent), []byte(d.Payload)}
}

// DeliveryUpdateArgs are the arguments of Queries.UpdateDelivery.
func DeliveryUpdateArgs(d *errand.Delivery) []any {
	return []any{string(d.Status), d.AttemptCount, d.Step, storage.MicrosPtr(d.NextAttemptAt), storage.MicrosPtr(d.LastAttemptAt), d.ID}
}

// AttemptArgs are the arguments of Queries.InsertAttempt.
func AttemptArgs(deliveryID string, a *errand.Attempt) []any {
	return []any{deliveryID, a.N, storage.Micros(a.Time), a.StatusCode, int64(a.LatencyMS * 1000), a.Error, a.Response}
}

// APIKeyInsertArgs are the arguments of Queries.InsertAPIKey.
func APIKeyInsertArgs(k *errand.APIKey) []any {
	return []any{k.ID, k.Hash, k.Prefix, k.Name, k.Tenant, stringsJSON(k.Roles), k.CreatedBy, storage.Micros(k.CreatedAt),
		storage.MicrosPtr(k.ExpiresAt), storage.MicrosPtr(k.RevokedAt), storage.MicrosPtr(k.LastUsed)}
}

// AuditArgs are the arguments of Queries.InsertAudit.
func AuditArgs(e *errand.AuditEntry) []any {
	return []any{storage.Micros(e.Time), e.Tenant, e.Subject, e.Action, e.Resource, e.Outcome, e.Status, e.Detail,
		e.RequestID, e.Remote}
}

// stringsJSON is a list of strings as a JSON array ([] for none).
func stringsJSON(s []string) []byte {
	if s == nil {
		s = []string{}
	}
	b, _ := json.Marshal(s) // strings always encode
	return b
}
