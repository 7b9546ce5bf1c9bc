package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/jackc/pgx/v5"
)

const (
	apiKeyCols   = `id, hash, prefix, name, tenant, roles, created_by, created_at, expires_at, revoked_at, last_used_at`
	auditCols    = `seq, time, tenant, subject, action, resource, outcome, status, detail, request_id, remote`
	qInsertKey   = `INSERT INTO api_keys (` + apiKeyCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	qKeyByHash   = `SELECT ` + apiKeyCols + ` FROM api_keys WHERE hash = $1`
	qKeyByID     = `SELECT ` + apiKeyCols + ` FROM api_keys WHERE id = $1 FOR UPDATE`
	qUpdateKey   = `UPDATE api_keys SET revoked_at = $1, last_used_at = $2 WHERE id = $3`
	qTouchKey    = `UPDATE api_keys SET last_used_at = greatest(coalesce(last_used_at, 0), $1) WHERE id = $2`
	qInsertAudit = `INSERT INTO audit_log (time, tenant, subject, action, resource, outcome, status, detail, request_id, remote)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq`
	qExpireAudit = `DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE time < $1 ORDER BY seq LIMIT $2)`
	qJobOwner    = `SELECT tenant, owner FROM jobs WHERE id = $1`
)

func (t *txn) InsertAPIKey(k *errand.APIKey) error {
	roles, _ := json.Marshal(nonNil(k.Roles))
	_, err := t.exec("insert api key", qInsertKey, k.ID, k.Hash, k.Prefix, k.Name, k.Tenant, roles, k.CreatedBy,
		storage.Micros(k.CreatedAt), storage.MicrosPtr(k.ExpiresAt), storage.MicrosPtr(k.RevokedAt), storage.MicrosPtr(k.LastUsed))
	return err
}

func (t *txn) GetAPIKey(id string) (*errand.APIKey, error) {
	return scanAPIKey(t.queryRow(qKeyByID, id))
}

func (t *txn) UpdateAPIKey(k *errand.APIKey) error {
	t.changed(storage.ChangedAPIKeys)
	return affected(t.exec("update api key", qUpdateKey, storage.MicrosPtr(k.RevokedAt), storage.MicrosPtr(k.LastUsed), k.ID))
}

func (t *txn) TouchAPIKeys(used map[string]time.Time) error {
	for id, at := range used {
		if _, err := t.exec("touch api key", qTouchKey, storage.Micros(at), id); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) InsertAudit(entries []*errand.AuditEntry) error {
	for _, e := range entries {
		err := t.queryRow(qInsertAudit, storage.Micros(e.Time), e.Tenant, e.Subject, e.Action,
			e.Resource, e.Outcome, e.Status, e.Detail, e.RequestID, e.Remote).Scan(&e.Seq)
		if err != nil {
			return fmt.Errorf("insert audit entry: %w", err)
		}
	}
	return nil
}

func (t *txn) ExpireAudit(before time.Time, limit int) (int, error) {
	tag, err := t.exec("expire audit", qExpireAudit, storage.Micros(before), limit)
	return int(tag.RowsAffected()), err
}

func (t *txn) InsertTicket(hash string, principal []byte, expires time.Time) error {
	_, err := t.exec("insert ticket", `INSERT INTO tickets (hash, principal, expires_at) VALUES ($1, $2, $3)`,
		hash, principal, storage.Micros(expires))
	return err
}

func (t *txn) TakeTicket(hash string, now time.Time) ([]byte, error) {
	var p []byte
	var exp int64
	err := t.queryRow(`DELETE FROM tickets WHERE hash = $1 RETURNING principal, expires_at`, hash).Scan(&p, &exp)
	if err != nil {
		return nil, interpretError(err)
	}
	if !now.Before(storage.FromMicros(exp)) {
		return nil, storage.ErrNotFound
	}
	return p, nil
}

func (t *txn) ExpireTickets(now time.Time, limit int) (int, error) {
	tag, err := t.exec("expire tickets", `DELETE FROM tickets WHERE hash IN
		(SELECT hash FROM tickets WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, storage.Micros(now), limit)
	return int(tag.RowsAffected()), err
}

// APIKeyByHash reads the key with a token hash.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*errand.APIKey, error) {
	return scanAPIKey(s.pool.QueryRow(ctx, qKeyByHash, hash))
}

// ListAPIKeys reads a tenant's keys (every tenant's for "").
func (s *Store) ListAPIKeys(ctx context.Context, tenant string) ([]*errand.APIKey, error) {
	w := where{}
	if tenant != "" {
		w.add("tenant = ", tenant)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE `+w.sql()+` ORDER BY created_at, id`, w.args...)
	out, err := collect(rows, err, scanAPIKey)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return out, nil
}

// ListAudit reads audit entries.
func (s *Store) ListAudit(ctx context.Context, p storage.ListAuditParams) ([]*errand.AuditEntry, error) {
	w := where{}
	switch {
	case p.AllTenants:
	case p.Anonymous:
		w.conds = append(w.conds, "tenant IN ("+w.arg(p.Tenant)+", '')")
	default:
		w.add("tenant = ", p.Tenant)
	}
	if a, ok := strings.CutSuffix(p.Action, "*"); ok {
		w.add("starts_with(action, ", a)
		w.conds[len(w.conds)-1] += ")"
	} else if p.Action != "" {
		w.add("action = ", p.Action)
	}
	if p.Subject != "" {
		w.add("subject = ", p.Subject)
	}
	if p.Outcome != "" {
		w.add("outcome = ", p.Outcome)
	}
	order := "DESC"
	if p.Follow {
		w.add("seq > ", p.After)
		order = "ASC"
	} else if p.Before > 0 {
		w.add("seq < ", p.Before)
	}
	q := `SELECT ` + auditCols + ` FROM audit_log WHERE ` + w.sql() + ` ORDER BY seq ` + order + ` LIMIT ` + w.arg(p.Limit)
	rows, err := s.pool.Query(ctx, q, w.args...)
	out, err := collect(rows, err, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}

func scanAudit(row pgx.Row) (*errand.AuditEntry, error) {
	e := &errand.AuditEntry{}
	var t int64
	err := row.Scan(&e.Seq, &t, &e.Tenant, &e.Subject, &e.Action, &e.Resource, &e.Outcome, &e.Status,
		&e.Detail, &e.RequestID, &e.Remote)
	e.Time = storage.FromMicros(t)
	return e, err
}

// JobOwner reads the tenant and owner of a job in any tenant.
func (s *Store) JobOwner(ctx context.Context, id string) (tenant, owner string, err error) {
	err = s.pool.QueryRow(ctx, qJobOwner, id).Scan(&tenant, &owner)
	return tenant, owner, interpretError(err)
}

func scanAPIKey(row pgx.Row) (*errand.APIKey, error) {
	k := &errand.APIKey{}
	var roles []byte
	var created int64
	var exp, revoked, used *int64
	if err := row.Scan(&k.ID, &k.Hash, &k.Prefix, &k.Name, &k.Tenant, &roles, &k.CreatedBy, &created,
		&exp, &revoked, &used); err != nil {
		return nil, interpretError(err)
	}
	if err := json.Unmarshal(roles, &k.Roles); err != nil {
		return nil, fmt.Errorf("api key %s roles: %w", k.ID, err)
	}
	k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsed = storage.FromMicros(created), timePtr(exp), timePtr(revoked), timePtr(used)
	return k, nil
}

// changed reports shared state this transaction changes (see storage.Commit.Changed).
func (t *txn) changed(what string) { t.c.Add(&storage.Commit{Changed: []string{what}}) }
