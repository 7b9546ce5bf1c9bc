package sqlrow

import (
	"fmt"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// The webhook and access parts of storage.Tx.

// InsertEndpoint writes a new endpoint.
func (t *Tx) InsertEndpoint(e *errand.Endpoint) error {
	t.changed(storage.ChangedEndpoints)
	return t.exec("insert endpoint", t.Q.InsertEndpoint, EndpointInsertArgs(e)...)
}

// UpdateEndpoint writes an endpoint's mutable fields.
func (t *Tx) UpdateEndpoint(e *errand.Endpoint) error {
	t.changed(storage.ChangedEndpoints)
	return t.execOne("update endpoint", t.Q.UpdateEndpoint, EndpointUpdateArgs(e)...)
}

// DeleteEndpoint removes a tenant's endpoint with its deliveries and attempts.
func (t *Tx) DeleteEndpoint(tenant, id string) error {
	t.changed(storage.ChangedEndpoints)
	if err := t.execOne("delete endpoint", t.Q.DeleteEndpoint, id, tenant); err != nil {
		return err
	}
	if err := t.exec("delete attempts", t.Q.DeleteEndpointAttempts, id); err != nil {
		return err
	}
	return t.exec("delete deliveries", t.Q.DeleteEndpointDeliveries, id)
}

// GetEndpoint reads (and where rows lock, locks) an endpoint of any tenant.
func (t *Tx) GetEndpoint(id string) (*errand.Endpoint, error) {
	e, err := ScanEndpoint(t.Conn.QueryRow(t.Q.GetEndpoint, id))
	return e, t.Interpret(err)
}

// InsertDelivery writes a new delivery; the commit reports it.
func (t *Tx) InsertDelivery(d *errand.Delivery) error {
	if err := t.exec("insert delivery", t.Q.InsertDelivery, DeliveryInsertArgs(d)...); err != nil {
		return err
	}
	t.Commit.Deliveries = append(t.Commit.Deliveries, d)
	return nil
}

// UpdateDelivery writes a delivery's status and attempt bookkeeping.
func (t *Tx) UpdateDelivery(d *errand.Delivery) error {
	return t.execOne("update delivery", t.Q.UpdateDelivery, DeliveryUpdateArgs(d)...)
}

// GetDelivery reads (and where rows lock, locks) a delivery of any tenant.
func (t *Tx) GetDelivery(id string) (*errand.Delivery, error) {
	d, err := ScanDeliveryPayload(t.Conn.QueryRow(t.Q.GetDelivery, id))
	return d, t.Interpret(err)
}

// InsertAttempt records an attempt of a delivery.
func (t *Tx) InsertAttempt(deliveryID string, a *errand.Attempt) error {
	return t.exec("insert attempt", t.Q.InsertAttempt, AttemptArgs(deliveryID, a)...)
}

// DueDeliveries claims pending deliveries due at now.
func (t *Tx) DueDeliveries(now time.Time, limit int) ([]*errand.Delivery, error) {
	return t.deliveries(t.Q.DueDeliveries, storage.Micros(now), limit)
}

// EndpointDeliveries claims an endpoint's deliveries in status since a time.
func (t *Tx) EndpointDeliveries(tenant, endpointID string, status errand.DeliveryStatus, since time.Time, limit int) ([]*errand.Delivery, error) {
	return t.deliveries(t.Q.EndpointDeliveries, endpointID, tenant, string(status), storage.Micros(since), limit)
}

func (t *Tx) deliveries(q string, args ...any) ([]*errand.Delivery, error) {
	rows, err := t.Conn.Query(q, args...)
	ds, err := Collect(rows, err, ScanDeliveryPayload)
	return ds, t.Interpret(err)
}

// ExpireDeliveries deletes finished deliveries created before before, with
// their attempts.
func (t *Tx) ExpireDeliveries(before time.Time, limit int) (int, error) {
	rows, err := t.Conn.Query(t.Q.ExpiredDeliveries, storage.Micros(before), limit)
	ids, err := Collect(rows, err, ScanID)
	if err != nil {
		return 0, fmt.Errorf("expired deliveries: %w", t.Interpret(err))
	}
	if len(ids) == 0 {
		return 0, nil
	}
	in, args := t.Dialect.AnyOf("delivery_id", ids)
	if err := t.exec("delete attempts", t.Dialect.Render(`DELETE FROM webhook_attempts WHERE `+in), args...); err != nil {
		return 0, err
	}
	in, args = t.Dialect.AnyOf("id", ids)
	if err := t.exec("delete deliveries", t.Dialect.Render(`DELETE FROM webhook_deliveries WHERE `+in), args...); err != nil {
		return 0, err
	}
	return len(ids), nil
}

// InsertAPIKey writes a new key.
func (t *Tx) InsertAPIKey(k *errand.APIKey) error {
	return t.exec("insert api key", t.Q.InsertAPIKey, APIKeyInsertArgs(k)...)
}

// GetAPIKey reads (and where rows lock, locks) a key.
func (t *Tx) GetAPIKey(id string) (*errand.APIKey, error) {
	k, err := ScanAPIKey(t.Conn.QueryRow(t.Q.GetAPIKey, id))
	return k, t.Interpret(err)
}

// UpdateAPIKey writes a key's revocation and last use; every node's key
// cache reloads.
func (t *Tx) UpdateAPIKey(k *errand.APIKey) error {
	t.changed(storage.ChangedAPIKeys)
	return t.execOne("update api key", t.Q.UpdateAPIKey, storage.MicrosPtr(k.RevokedAt), storage.MicrosPtr(k.LastUsed), k.ID)
}

// TouchAPIKeys raises keys' last use.
func (t *Tx) TouchAPIKeys(used map[string]time.Time) error {
	for id, at := range used {
		if err := t.exec("touch api key", t.Q.TouchAPIKey, storage.Micros(at), id); err != nil {
			return err
		}
	}
	return nil
}

// InsertAudit appends audit entries and sets their seqs.
func (t *Tx) InsertAudit(entries []*errand.AuditEntry) error {
	for _, e := range entries {
		if err := t.Conn.ExecRow(t.Q.InsertAudit, AuditArgs(e)...).Scan(&e.Seq); err != nil {
			return fmt.Errorf("insert audit entry: %w", err)
		}
	}
	return nil
}

// ExpireAudit deletes entries older than before.
func (t *Tx) ExpireAudit(before time.Time, limit int) (int, error) {
	n, err := t.Conn.Exec(t.Q.ExpireAudit, storage.Micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("expire audit: %w", err)
	}
	return int(n), nil
}

// InsertTicket stores a single-use ticket.
func (t *Tx) InsertTicket(hash string, principal []byte, expires time.Time) error {
	return t.exec("insert ticket", t.Q.InsertTicket, hash, principal, storage.Micros(expires))
}

// TakeTicket deletes a ticket and returns its principal unless it expired.
func (t *Tx) TakeTicket(hash string, now time.Time) ([]byte, error) {
	var p []byte
	var exp int64
	if err := t.Conn.ExecRow(t.Q.TakeTicket, hash).Scan(&p, &exp); err != nil {
		return nil, t.Interpret(err)
	}
	if !now.Before(storage.FromMicros(exp)) {
		return nil, storage.ErrNotFound
	}
	return p, nil
}

// ExpireTickets deletes tickets expired at now.
func (t *Tx) ExpireTickets(now time.Time, limit int) (int, error) {
	n, err := t.Conn.Exec(t.Q.ExpireTickets, storage.Micros(now), limit)
	if err != nil {
		return 0, fmt.Errorf("expire tickets: %w", err)
	}
	return int(n), nil
}
