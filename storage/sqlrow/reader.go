package sqlrow

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// DB runs a driver's reads of committed state (its read pool).
type DB interface {
	Query(ctx context.Context, q string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) Row
}

// Reader is storage.Reader over a DB. A driver's store embeds it (and may
// override ListEvents).
type Reader struct {
	DB      DB
	Q       *Queries
	Dialect Dialect
	// Interpret is the driver's error translation (no rows: ErrNotFound).
	Interpret func(error) error
}

// GetJob reads a committed job of a tenant.
func (r *Reader) GetJob(ctx context.Context, tenant, id string) (*errand.Job, error) {
	j, err := ScanJob(r.DB.QueryRow(ctx, r.Q.GetTenantJob, id, tenant))
	return j, r.Interpret(err)
}

// ListJobs reads committed jobs newest first, up to p.Limit and p.MaxBytes
// (see Dialect.cutsInSQL: what lies past the budget is never read). With an
// owner it walks the (tenant, owner, id) index newest first; with a legacy
// owner as well, each owner's walk is limited on its own and the two are
// merged, as owner IN (…) would walk the tenant's jobs instead.
func (r *Reader) ListJobs(ctx context.Context, p storage.ListJobsParams) ([]*errand.Job, error) {
	owners := []string{p.Owner}
	if p.LegacyOwner != "" && p.LegacyOwner != p.Owner {
		owners = append(owners, p.LegacyOwner)
	}
	// One owner: the rows (or, to cut in SQL, their ids and sizes) straight off
	// the index. Two: ids (and sizes) off each owner's walk, merged.
	cols := JobColumns
	switch {
	case r.Dialect.cutsInSQL:
		cols = `id, ` + JobBytes + ` AS size`
	case len(owners) > 1:
		cols = `id`
	}
	var arms []string
	var args []any
	for _, o := range owners {
		w := jobsWhere(p, o)
		arms = append(arms, `SELECT `+cols+` FROM jobs WHERE `+w.SQL()+` ORDER BY id DESC LIMIT ?`)
		args = append(args, w.Args(p.Limit)...)
	}
	q := arms[0]
	if len(arms) > 1 {
		q = `SELECT * FROM (` + arms[0] + `) a UNION ALL SELECT * FROM (` + arms[1] + `) b`
		if r.Dialect.cutsInSQL {
			q = `SELECT * FROM (` + q + `) u ORDER BY id DESC LIMIT ?`
		} else {
			// Whole rows are read only for the ids that make the page, in order.
			q = `SELECT ` + JobColumns + ` FROM jobs WHERE id IN (` + q + `) ORDER BY id DESC LIMIT ?`
		}
		args = append(args, p.Limit)
	}
	if r.Dialect.cutsInSQL {
		q = CutByBytes(q, "jobs", "id", JobColumns, "id DESC")
	}
	rows, err := r.DB.Query(ctx, r.Dialect.Render(q), r.Dialect.budget(args, p.MaxBytes)...)
	js, err := CollectBytes(rows, err, p.MaxBytes, ScanJob, (*errand.Job).Bytes)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", r.Interpret(err))
	}
	return js, nil
}

// jobsWhere is ListJobs' filter for one owner ("" for every owner's).
func jobsWhere(p storage.ListJobsParams, owner string) *Where {
	var w Where
	w.Add("tenant = ?", p.Tenant)
	if p.Before != "" {
		w.Add("id < ?", p.Before)
	}
	if owner != "" {
		w.Add("owner = ?", owner)
	}
	if p.Operation != "" {
		w.Add("operation = ?", p.Operation)
	}
	if p.Status != "" {
		w.Add("status = ?", string(p.Status))
	}
	return &w
}

// ListEvents reads a stream's committed events after a cursor, up to p.Limit
// and p.MaxBytes (see Dialect.cutsInSQL).
func (r *Reader) ListEvents(ctx context.Context, p storage.ListEventsParams) ([]*errand.Event, error) {
	return r.ListEventsUpTo(ctx, p, math.MaxInt64)
}

// ListEventsUpTo is ListEvents of the events up to seq upTo.
func (r *Reader) ListEventsUpTo(ctx context.Context, p storage.ListEventsParams, upTo int64) ([]*errand.Event, error) {
	rows, err := r.DB.Query(ctx, r.Q.ListEvents, r.Dialect.budget([]any{p.Stream, p.Tenant, p.After, upTo, p.Limit}, p.MaxBytes)...)
	evs, err := CollectBytes(rows, err, p.MaxBytes, ScanEvent, (*errand.Event).Bytes)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", r.Interpret(err))
	}
	return evs, nil
}

// TailCursor reads the cursor after which a stream's last n committed events
// start (0 when the stream holds n or fewer).
func (r *Reader) TailCursor(ctx context.Context, tenant, stream string, n int) (int64, error) {
	var seq int64
	err := r.Interpret(r.DB.QueryRow(ctx, r.Q.TailSeq, stream, tenant, n-1).Scan(&seq))
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	return max(seq-1, 0), err
}

// StreamFloor reads the highest cursor retention deleted from a stream.
func (r *Reader) StreamFloor(ctx context.Context, tenant, stream string) (int64, error) {
	var f int64
	err := r.Interpret(r.DB.QueryRow(ctx, r.Q.StreamFloor, tenant, stream).Scan(&f))
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	return f, err
}

// NextWakeup reads when the scheduler and the lease reaper next have work.
func (r *Reader) NextWakeup(ctx context.Context) (runAt, leaseExpiry time.Time, err error) {
	if runAt, err = r.earliest(ctx, r.Q.NextScheduled); err != nil {
		return runAt, leaseExpiry, fmt.Errorf("next scheduled: %w", err)
	}
	if leaseExpiry, err = r.earliest(ctx, r.Q.NextLeaseEnd); err != nil {
		return runAt, leaseExpiry, fmt.Errorf("next lease expiry: %w", err)
	}
	return runAt, leaseExpiry, nil
}

// earliest reads a min(…) of microseconds: zero for NULL.
func (r *Reader) earliest(ctx context.Context, q string) (time.Time, error) {
	var us *int64
	if err := r.DB.QueryRow(ctx, q).Scan(&us); err != nil {
		return time.Time{}, r.Interpret(err)
	}
	if us == nil {
		return time.Time{}, nil
	}
	return storage.FromMicros(*us), nil
}

// JobOwner reads the tenant and owner of a job in any tenant.
func (r *Reader) JobOwner(ctx context.Context, id string) (tenant, owner string, err error) {
	err = r.DB.QueryRow(ctx, r.Q.JobOwner, id).Scan(&tenant, &owner)
	return tenant, owner, r.Interpret(err)
}

// ListEndpoints reads a tenant's endpoints (every tenant's for "").
func (r *Reader) ListEndpoints(ctx context.Context, tenant string) ([]*errand.Endpoint, error) {
	if tenant == "" {
		return list(ctx, r, "list endpoints", r.Q.ListEndpoints, nil, ScanEndpoint)
	}
	return list(ctx, r, "list endpoints", r.Q.ListTenantEndpoints, []any{tenant}, ScanEndpoint)
}

// GetEndpoint reads one endpoint of a tenant.
func (r *Reader) GetEndpoint(ctx context.Context, tenant, id string) (*errand.Endpoint, error) {
	e, err := ScanEndpoint(r.DB.QueryRow(ctx, r.Q.GetTenantEndpoint, id, tenant))
	return e, r.Interpret(err)
}

// ListDeliveries reads deliveries newest first, without payloads.
func (r *Reader) ListDeliveries(ctx context.Context, p storage.ListDeliveriesParams) ([]*errand.Delivery, error) {
	var w Where
	w.Add("tenant = ?", p.Tenant)
	if p.EndpointID != "" {
		w.Add("endpoint_id = ?", p.EndpointID)
	}
	if p.JobID != "" {
		w.Add("job_id = ?", p.JobID)
	}
	if p.Status != "" {
		w.Add("status = ?", string(p.Status))
	}
	if p.Before != "" {
		w.Add("id < ?", p.Before)
	}
	return list(ctx, r, "list deliveries", `SELECT `+DeliveryColumns+` FROM webhook_deliveries WHERE `+w.SQL()+
		` ORDER BY id DESC LIMIT ?`, w.Args(p.Limit), ScanDelivery)
}

// GetDelivery reads one delivery of a tenant, with its payload.
func (r *Reader) GetDelivery(ctx context.Context, tenant, id string) (*errand.Delivery, error) {
	d, err := ScanDeliveryPayload(r.DB.QueryRow(ctx, r.Q.GetTenantDelivery, id, tenant))
	return d, r.Interpret(err)
}

// ListAttempts reads the attempts of deliveries, oldest first.
func (r *Reader) ListAttempts(ctx context.Context, ids []string) (map[string][]errand.Attempt, error) {
	out := make(map[string][]errand.Attempt, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	in, args := r.Dialect.AnyOf("delivery_id", ids)
	as, err := list(ctx, r, "list attempts", `SELECT `+AttemptColumns+` FROM webhook_attempts WHERE `+in+
		` ORDER BY delivery_id, n`, args, ScanAttempt)
	for _, a := range as {
		out[a.DeliveryID] = append(out[a.DeliveryID], a.Attempt)
	}
	return out, err
}

// NextDelivery reads when the next pending delivery is due.
func (r *Reader) NextDelivery(ctx context.Context) (time.Time, error) {
	t, err := r.earliest(ctx, r.Q.NextDelivery)
	if err != nil {
		return t, fmt.Errorf("next delivery: %w", err)
	}
	return t, nil
}

// APIKeyByHash reads the key with a token hash.
func (r *Reader) APIKeyByHash(ctx context.Context, hash string) (*errand.APIKey, error) {
	k, err := ScanAPIKey(r.DB.QueryRow(ctx, r.Q.APIKeyByHash, hash))
	return k, r.Interpret(err)
}

// ListAPIKeys reads a tenant's keys (every tenant's for "").
func (r *Reader) ListAPIKeys(ctx context.Context, tenant string) ([]*errand.APIKey, error) {
	if tenant == "" {
		return list(ctx, r, "list api keys", r.Q.ListAPIKeys, nil, ScanAPIKey)
	}
	return list(ctx, r, "list api keys", r.Q.ListTenantAPIKeys, []any{tenant}, ScanAPIKey)
}

// ListAudit reads audit entries.
func (r *Reader) ListAudit(ctx context.Context, p storage.ListAuditParams) ([]*errand.AuditEntry, error) {
	var w Where
	switch {
	case p.AllTenants:
	case p.Anonymous:
		w.Add("tenant IN (?, '')", p.Tenant)
	default:
		w.Add("tenant = ?", p.Tenant)
	}
	if a, ok := strings.CutSuffix(p.Action, "*"); ok {
		w.Add("substr(action, 1, ?) = ?", utf8.RuneCountInString(a), a) // substr counts characters
	} else if p.Action != "" {
		w.Add("action = ?", p.Action)
	}
	if p.Subject != "" {
		w.Add("subject = ?", p.Subject)
	}
	if p.Outcome != "" {
		w.Add("outcome = ?", p.Outcome)
	}
	order := "DESC"
	if p.Follow {
		w.Add("seq > ?", p.After)
		order = "ASC"
	} else if p.Before > 0 {
		w.Add("seq < ?", p.Before)
	}
	return list(ctx, r, "list audit", `SELECT `+AuditColumns+` FROM audit_log WHERE `+w.SQL()+` ORDER BY seq `+order+
		` LIMIT ?`, w.Args(p.Limit), ScanAudit)
}

// list reads the rows of a query built at the call (rendered here) or of
// one of Queries (rendered already: Render leaves it as it is).
func list[T any](ctx context.Context, r *Reader, what, q string, args []any, scan func(Row) (T, error)) ([]T, error) {
	rows, err := r.DB.Query(ctx, r.Dialect.Render(q), args...)
	out, err := Collect(rows, err, scan)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, r.Interpret(err))
	}
	return out, nil
}
