package storage

import (
	"context"
	"time"

	"github.com/errandhq/errand"
)

// AccessReader reads API keys and the audit log.
type AccessReader interface {
	// APIKeyByHash returns the key whose token hashes to hash (hex SHA-256), or ErrNotFound.
	APIKeyByHash(ctx context.Context, hash string) (*errand.APIKey, error)
	// ListAPIKeys returns a tenant's keys (every tenant's for ""), oldest first.
	ListAPIKeys(ctx context.Context, tenant string) ([]*errand.APIKey, error)
	// ListAudit returns audit entries; see ListAuditParams.
	ListAudit(ctx context.Context, p ListAuditParams) ([]*errand.AuditEntry, error)
	// JobOwner returns the tenant and owner of the job with id in any tenant, or
	// ErrNotFound (to tell a cross-tenant probe from a missing job in the audit log).
	JobOwner(ctx context.Context, id string) (tenant, owner string, err error)
}

// AccessTx is what key management, tickets and the audit log do in a write transaction.
type AccessTx interface {
	// InsertAPIKey stores a new key; a key whose id or hash exists is refused.
	InsertAPIKey(k *errand.APIKey) error
	// GetAPIKey returns the key with id, or ErrNotFound.
	GetAPIKey(id string) (*errand.APIKey, error)
	// UpdateAPIKey writes a key's revoked_at and last_used_at, or returns ErrNotFound.
	UpdateAPIKey(k *errand.APIKey) error
	// TouchAPIKeys raises the last_used_at of keys (by id) to the given times;
	// it never moves one back, and ignores ids that do not exist.
	TouchAPIKeys(used map[string]time.Time) error
	// InsertAudit appends entries to the audit log and sets their Seq,
	// increasing in the order given.
	InsertAudit(entries []*errand.AuditEntry) error
	// ExpireAudit deletes up to limit entries older than before; it returns how many.
	ExpireAudit(before time.Time, limit int) (int, error)
	// InsertTicket stores a single-use ticket (by the hex SHA-256 of its token)
	// for a principal (JSON) until expires.
	InsertTicket(hash string, principal []byte, expires time.Time) error
	// TakeTicket deletes the ticket and returns its principal, or ErrNotFound when
	// there is none or it expired at or before now.
	TakeTicket(hash string, now time.Time) ([]byte, error)
	// ExpireTickets deletes up to limit tickets that expired at or before now;
	// it returns how many.
	ExpireTickets(now time.Time, limit int) (int, error)
}

// ListAuditParams selects audit entries for ListAudit.
type ListAuditParams struct {
	// Tenant limits entries to one tenant's (and, with Anonymous, to failed
	// authentications, which have no tenant). "" with AllTenants reads all.
	Tenant     string
	Anonymous  bool
	AllTenants bool
	Action     string // "" for all; a trailing * matches a prefix
	Subject    string // "" for all
	Outcome    string // "" for all
	// Follow reads entries after After, oldest first (to follow the log);
	// otherwise entries before Before (0: the newest), newest first.
	Follow bool
	After  int64
	Before int64
	Limit  int
}
