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
	apiKeyCols   = `id, hash, prefix, name, tenant, roles, created_by, created_at, expires_at, revoked_at, last_used_at`
	auditCols    = `seq, time, tenant, subject, action, resource, outcome, status, detail, request_id, remote`
	qInsertKey   = `INSERT INTO api_keys (` + apiKeyCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qKeyByHash   = `SELECT ` + apiKeyCols + ` FROM api_keys WHERE hash = ?`
	qKeyByID     = `SELECT ` + apiKeyCols + ` FROM api_keys WHERE id = ?`
	qUpdateKey   = `UPDATE api_keys SET revoked_at = ?, last_used_at = ? WHERE id = ?`
	qTouchKey    = `UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?`
	qInsertAudit = `INSERT INTO audit_log (time, tenant, subject, action, resource, outcome, status, detail, request_id, remote)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qExpireAudit = `DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE time < ? ORDER BY seq LIMIT ?)`
	qJobOwner    = `SELECT tenant, owner FROM jobs WHERE id = ?`
)

func (t *txn) InsertAPIKey(k *errand.APIKey) error {
	roles, _ := json.Marshal(nonNil(k.Roles))
	_, err := t.w.conn.ExecContext(t.w.ctx, qInsertKey, k.ID, k.Hash, k.Prefix, k.Name, k.Tenant, roles, k.CreatedBy,
		storage.Micros(k.CreatedAt), storage.MicrosPtr(k.ExpiresAt), storage.MicrosPtr(k.RevokedAt), storage.MicrosPtr(k.LastUsed))
	if err != nil {
		return fmt.Errorf("insert api key: %w", err)
	}
	return nil
}

func (t *txn) GetAPIKey(id string) (*errand.APIKey, error) {
	return scanAPIKey(t.w.conn.QueryRowContext(t.w.ctx, qKeyByID, id))
}

func (t *txn) UpdateAPIKey(k *errand.APIKey) error {
	t.changed(storage.ChangedAPIKeys)
	res, err := t.w.conn.ExecContext(t.w.ctx, qUpdateKey, storage.MicrosPtr(k.RevokedAt), storage.MicrosPtr(k.LastUsed), k.ID)
	return affected(res, err, "update api key")
}

func (t *txn) TouchAPIKeys(used map[string]time.Time) error {
	for id, at := range used {
		if _, err := t.w.conn.ExecContext(t.w.ctx, qTouchKey, storage.Micros(at), id); err != nil {
			return fmt.Errorf("touch api key: %w", err)
		}
	}
	return nil
}

func (t *txn) InsertAudit(entries []*errand.AuditEntry) error {
	for _, e := range entries {
		res, err := t.w.conn.ExecContext(t.w.ctx, qInsertAudit, storage.Micros(e.Time), e.Tenant, e.Subject, e.Action,
			e.Resource, e.Outcome, e.Status, e.Detail, e.RequestID, e.Remote)
		if err != nil {
			return fmt.Errorf("insert audit entry: %w", err)
		}
		if e.Seq, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("audit seq: %w", err)
		}
	}
	return nil
}

func (t *txn) ExpireAudit(before time.Time, limit int) (int, error) {
	res, err := t.w.conn.ExecContext(t.w.ctx, qExpireAudit, storage.Micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("expire audit: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (t *txn) InsertTicket(hash string, principal []byte, expires time.Time) error {
	_, err := t.w.conn.ExecContext(t.w.ctx, `INSERT INTO tickets (hash, principal, expires_at) VALUES (?, ?, ?)`,
		hash, principal, storage.Micros(expires))
	if err != nil {
		return fmt.Errorf("insert ticket: %w", err)
	}
	return nil
}

func (t *txn) TakeTicket(hash string, now time.Time) ([]byte, error) {
	var p []byte
	var exp int64
	err := t.w.conn.QueryRowContext(t.w.ctx, `DELETE FROM tickets WHERE hash = ? RETURNING principal, expires_at`, hash).Scan(&p, &exp)
	if err != nil {
		return nil, interpretError(err)
	}
	if !now.Before(storage.FromMicros(exp)) {
		return nil, storage.ErrNotFound
	}
	return p, nil
}

func (t *txn) ExpireTickets(now time.Time, limit int) (int, error) {
	res, err := t.w.conn.ExecContext(t.w.ctx, `DELETE FROM tickets WHERE hash IN
		(SELECT hash FROM tickets WHERE expires_at <= ? LIMIT ?)`, storage.Micros(now), limit)
	if err != nil {
		return 0, fmt.Errorf("expire tickets: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// APIKeyByHash reads the key with a token hash.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*errand.APIKey, error) {
	return scanAPIKey(s.rdb.QueryRowContext(ctx, qKeyByHash, hash))
}

// ListAPIKeys reads a tenant's keys (every tenant's for "").
func (s *Store) ListAPIKeys(ctx context.Context, tenant string) ([]*errand.APIKey, error) {
	q, args := `SELECT `+apiKeyCols+` FROM api_keys ORDER BY created_at, id`, []any{}
	if tenant != "" {
		q, args = `SELECT `+apiKeyCols+` FROM api_keys WHERE tenant = ? ORDER BY created_at, id`, []any{tenant}
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	out, err := collect(rows, err, scanAPIKey)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return out, nil
}

// ListAudit reads audit entries.
func (s *Store) ListAudit(ctx context.Context, p storage.ListAuditParams) ([]*errand.AuditEntry, error) {
	where, args := []string{"1 = 1"}, []any{}
	add := func(cond string, v ...any) { where = append(where, cond); args = append(args, v...) }
	switch {
	case p.AllTenants:
	case p.Anonymous:
		add("tenant IN (?, '')", p.Tenant)
	default:
		add("tenant = ?", p.Tenant)
	}
	if a, ok := strings.CutSuffix(p.Action, "*"); ok {
		add("substr(action, 1, ?) = ?", len(a), a)
	} else if p.Action != "" {
		add("action = ?", p.Action)
	}
	if p.Subject != "" {
		add("subject = ?", p.Subject)
	}
	if p.Outcome != "" {
		add("outcome = ?", p.Outcome)
	}
	order := "DESC"
	if p.Follow {
		add("seq > ?", p.After)
		order = "ASC"
	} else if p.Before > 0 {
		add("seq < ?", p.Before)
	}
	args = append(args, p.Limit)
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+auditCols+` FROM audit_log WHERE `+strings.Join(where, " AND ")+
		` ORDER BY seq `+order+` LIMIT ?`, args...)
	out, err := collect(rows, err, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}

func scanAudit(row rowScanner) (*errand.AuditEntry, error) {
	e := &errand.AuditEntry{}
	var t int64
	err := row.Scan(&e.Seq, &t, &e.Tenant, &e.Subject, &e.Action, &e.Resource, &e.Outcome, &e.Status,
		&e.Detail, &e.RequestID, &e.Remote)
	e.Time = storage.FromMicros(t)
	return e, err
}

// JobOwner reads the tenant and owner of a job in any tenant.
func (s *Store) JobOwner(ctx context.Context, id string) (tenant, owner string, err error) {
	err = s.rdb.QueryRowContext(ctx, qJobOwner, id).Scan(&tenant, &owner)
	return tenant, owner, interpretError(err)
}

func scanAPIKey(row rowScanner) (*errand.APIKey, error) {
	k := &errand.APIKey{}
	var roles []byte
	var created int64
	var exp, revoked, used sql.NullInt64
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
