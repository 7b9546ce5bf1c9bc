// Package webhook delivers events to URLs: endpoints subscribed to a tenant's
// events, and the callback_url of a job. Deliveries are written in the same
// transaction as their event (the outbox), signed the Standard Webhooks way,
// retried with back-off over about three days, and every attempt is kept.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/signing"
	"github.com/errandhq/errand/storage"
)

// Limits on what clients send.
const (
	MaxDescription = 1024
	MaxRateLimit   = 10000
	MaxEndpoints   = 1000 // per tenant
	MaxRecover     = 10000
)

// Service runs webhooks: the endpoints API, the outbox and the deliverer.
// Wire it to its store twice: as an EventHook (the outbox writes each event's
// deliveries in its transaction) and as a Notifier (the deliverer makes the
// first attempts of committed deliveries; endpoint changes on any node reload
// the outbox).
type Service struct {
	cfg   Config
	o     *Outbox
	store storage.Store
	d     *Deliverer
	keys  *callbackKeys
	ids   errand.IDGenerator
}

var (
	_ storage.EventHook = (*Service)(nil)
	_ storage.Notifier  = (*Service)(nil)
)

// New returns the webhook service over store: store.Hook(s) and
// store.Listen(s) make it see every event and commit.
func New(store storage.Store, cfg *Config) (*Service, error) {
	c := cfg.withDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("webhook config: %w", err)
	}
	o := NewOutbox(store, c.claim(), c.Now, c.Log)
	s := &Service{cfg: c, o: o, store: store}
	s.keys = &callbackKeys{store: s.store, now: c.Now, overlap: c.RotationOverlap, cache: map[string]cachedSecret{}}
	s.d = newDeliverer(o, s.keys, c)
	return s, nil
}

// EventAppended writes e's deliveries in its transaction (the outbox).
func (s *Service) EventAppended(tx storage.Tx, e *errand.Event) error {
	return s.o.EventAppended(tx, e)
}

// Committed hands committed deliveries to the deliverer and reloads endpoints
// that changed on any node.
func (s *Service) Committed(c *storage.Commit) {
	s.o.Committed(c)
	s.d.Committed(c)
}

// Start reads the endpoints and begins delivering.
func (s *Service) Start(ctx context.Context) error {
	if err := s.o.Reload(ctx); err != nil {
		return err
	}
	return s.d.Start(ctx)
}

// Stop ends delivery (attempts in flight are sent again after a restart).
func (s *Service) Stop(ctx context.Context) error { return s.d.Stop(ctx) }

// EndpointInput is what a client sets on an endpoint. On update, nil fields are
// left as they are.
type EndpointInput struct {
	URL         *string
	Description *string
	Events      *[]string
	Disabled    *bool
	RateLimit   *int
}

// check validates the fields that are set.
func (s *Service) check(ctx context.Context, in EndpointInput) error {
	var bad []errand.FieldError
	if in.URL != nil {
		if err := s.cfg.Guard.CheckURL(ctx, *in.URL); err != nil {
			bad = append(bad, errand.FieldError{Pointer: "/url", Message: errand.ErrorMessage(err)})
		}
	}
	if in.Description != nil && (utf8.RuneCountInString(*in.Description) > MaxDescription || !utf8.ValidString(*in.Description)) {
		bad = append(bad, errand.FieldError{Pointer: "/description", Message: fmt.Sprintf("at most %d characters", MaxDescription)})
	}
	if in.RateLimit != nil && (*in.RateLimit < 0 || *in.RateLimit > MaxRateLimit) {
		bad = append(bad, errand.FieldError{Pointer: "/rate_limit", Message: fmt.Sprintf("deliveries per second, 0 (no limit) to %d", MaxRateLimit)})
	}
	if in.Events != nil {
		if _, err := ParseFilter(*in.Events); err != nil {
			var e *errand.Error
			if errors.As(err, &e) {
				bad = append(bad, e.Fields...)
			}
		}
	}
	if len(bad) > 0 {
		return &errand.Error{Code: errand.EVALIDATION, Message: "the endpoint has invalid fields", Fields: bad}
	}
	return nil
}

// Create adds an endpoint; the answer carries its secret, shown only here and on rotation.
func (s *Service) Create(ctx context.Context, p errand.Principal, in EndpointInput) (*errand.Endpoint, error) {
	if err := manage(p); err != nil {
		return nil, err
	}
	if in.URL == nil || *in.URL == "" {
		return nil, fieldError("/url", "required: the http:// or https:// URL to deliver to")
	}
	if err := s.check(ctx, in); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	ep := &errand.Endpoint{ID: s.ids.New("ep", now), Tenant: p.Tenant, URL: *in.URL, Events: []string{},
		Secret: signing.NewSecret(), CreatedAt: now, UpdatedAt: now}
	apply(ep, in)
	if n := len(s.o.snap.Load().byTenantAll(p.Tenant)); n >= MaxEndpoints {
		return nil, errand.Errorf(errand.ECONFLICT, "a tenant may have at most %d endpoints", MaxEndpoints)
	}
	err := s.store.WithTx(ctx, func(tx storage.Tx) error { return tx.InsertEndpoint(ep) })
	if err != nil {
		return nil, err
	}
	return ep, s.o.Reload(ctx)
}

func apply(ep *errand.Endpoint, in EndpointInput) {
	if in.URL != nil {
		ep.URL = *in.URL
	}
	if in.Description != nil {
		ep.Description = *in.Description
	}
	if in.Events != nil {
		ep.Events = append([]string{}, *in.Events...)
	}
	if in.RateLimit != nil {
		ep.RateLimit = *in.RateLimit
	}
	if in.Disabled != nil && *in.Disabled != ep.Disabled {
		ep.Disabled, ep.DisabledReason, ep.FailingSince = *in.Disabled, "", nil
		if ep.Disabled {
			ep.DisabledReason = "manual"
		}
	}
}

// List returns the tenant's endpoints, oldest first.
func (s *Service) List(ctx context.Context, p errand.Principal) ([]*errand.Endpoint, error) {
	if err := manage(p); err != nil {
		return nil, err
	}
	eps, err := s.store.ListEndpoints(ctx, p.Tenant)
	if eps == nil {
		eps = []*errand.Endpoint{}
	}
	return eps, err
}

// Get returns one of the tenant's endpoints.
func (s *Service) Get(ctx context.Context, p errand.Principal, id string) (*errand.Endpoint, error) {
	if err := manage(p); err != nil {
		return nil, err
	}
	ep, err := s.store.GetEndpoint(ctx, p.Tenant, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errand.Errorf(errand.ENOTFOUND, "webhook endpoint %q does not exist", errand.Truncate(id, 80))
	}
	return ep, err
}

// Update changes the fields set in in. Enabling a disabled endpoint starts its
// health over.
func (s *Service) Update(ctx context.Context, p errand.Principal, id string, in EndpointInput) (*errand.Endpoint, error) {
	if err := manage(p); err != nil {
		return nil, err
	}
	if err := s.check(ctx, in); err != nil {
		return nil, err
	}
	return s.change(ctx, p, id, func(ep *errand.Endpoint) { apply(ep, in) })
}

// change reads, changes and writes an endpoint in one transaction.
func (s *Service) change(ctx context.Context, p errand.Principal, id string, fn func(*errand.Endpoint)) (*errand.Endpoint, error) {
	var ep *errand.Endpoint
	err := s.store.WithTx(ctx, func(tx storage.Tx) error {
		var err error
		if ep, err = tx.GetEndpoint(id); err != nil || ep.Tenant != p.Tenant {
			return errand.Errorf(errand.ENOTFOUND, "webhook endpoint %q does not exist", errand.Truncate(id, 80))
		}
		fn(ep)
		ep.UpdatedAt = s.cfg.Now()
		return tx.UpdateEndpoint(ep)
	})
	if err != nil {
		return nil, err
	}
	return ep, s.o.Reload(ctx)
}

// Delete removes an endpoint with its deliveries.
func (s *Service) Delete(ctx context.Context, p errand.Principal, id string) error {
	if err := manage(p); err != nil {
		return err
	}
	err := s.store.WithTx(ctx, func(tx storage.Tx) error { return tx.DeleteEndpoint(p.Tenant, id) })
	if errors.Is(err, storage.ErrNotFound) {
		return errand.Errorf(errand.ENOTFOUND, "webhook endpoint %q does not exist", errand.Truncate(id, 80))
	}
	if err != nil {
		return err
	}
	return s.o.Reload(ctx)
}

// RotateSecret gives an endpoint a new secret; the old one keeps signing (as a
// second signature) for the rotation overlap.
func (s *Service) RotateSecret(ctx context.Context, p errand.Principal, id string) (*errand.Endpoint, error) {
	if err := manage(p); err != nil {
		return nil, err
	}
	return s.change(ctx, p, id, func(ep *errand.Endpoint) {
		exp := s.cfg.Now().Add(s.cfg.RotationOverlap)
		ep.PreviousSecret, ep.PreviousExpiresAt, ep.Secret = ep.Secret, &exp, signing.NewSecret()
	})
}

// DeliveryPage selects deliveries.
type DeliveryPage struct {
	EndpointID string
	JobID      string
	Status     errand.DeliveryStatus
	Limit      int    // 1 to 250; defaults to 50
	Cursor     string // from a previous page
}

// Deliveries returns a page of deliveries, newest first, each with its attempts,
// and the next page's cursor ("" on the last).
func (s *Service) Deliveries(ctx context.Context, p errand.Principal, q DeliveryPage) ([]*errand.Delivery, string, error) {
	if err := manage(p); err != nil {
		return nil, "", err
	}
	if q.EndpointID != "" {
		if _, err := s.Get(ctx, p, q.EndpointID); err != nil {
			return nil, "", err
		}
	}
	q.Limit = max(q.Limit, 0)
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit > 250 {
		return nil, "", errand.Errorf(errand.EINVALID, "limit must be between 1 and 250")
	}
	switch q.Status {
	case "", errand.DeliveryPending, errand.DeliverySucceeded, errand.DeliveryFailed:
	default:
		return nil, "", errand.Errorf(errand.EINVALID, "status must be pending, succeeded or failed")
	}
	before, err := errand.ParsePageCursor("msg", q.Cursor)
	if err != nil {
		return nil, "", err
	}
	ds, err := s.store.ListDeliveries(ctx, storage.ListDeliveriesParams{Tenant: p.Tenant, EndpointID: q.EndpointID,
		JobID: q.JobID, Status: q.Status, Before: before, Limit: q.Limit + 1})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ds) > q.Limit {
		ds = ds[:q.Limit]
		next = errand.PageCursor(ds[len(ds)-1].ID)
	}
	return ds, next, s.withAttempts(ctx, ds)
}

func (s *Service) withAttempts(ctx context.Context, ds []*errand.Delivery) error {
	ids := make([]string, len(ds))
	for i, x := range ds {
		ids[i] = x.ID
	}
	as, err := s.store.ListAttempts(ctx, ids)
	if err != nil {
		return err
	}
	for _, x := range ds {
		x.Attempts = as[x.ID]
		if x.Attempts == nil {
			x.Attempts = []errand.Attempt{}
		}
	}
	return nil
}

// Delivery returns one delivery with its payload and attempts.
func (s *Service) Delivery(ctx context.Context, p errand.Principal, id string) (*errand.Delivery, error) {
	if err := manage(p); err != nil {
		return nil, err
	}
	x, err := s.store.GetDelivery(ctx, p.Tenant, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errand.Errorf(errand.ENOTFOUND, "delivery %q does not exist", errand.Truncate(id, 80))
	}
	if err != nil {
		return nil, err
	}
	return x, s.withAttempts(ctx, []*errand.Delivery{x})
}

// Redeliver sends a delivery again now, with the same webhook-id, starting the
// retry schedule over.
func (s *Service) Redeliver(ctx context.Context, p errand.Principal, id string) (*errand.Delivery, error) {
	if err := manage(p); err != nil {
		return nil, err
	}
	s.d.mu.Lock()
	_, busy := s.d.pending[id]
	s.d.mu.Unlock()
	if busy {
		return nil, errand.Errorf(errand.ECONFLICT, "delivery %s is being sent right now; its attempts will show the result", id)
	}
	var x *errand.Delivery
	err := s.store.WithTx(ctx, func(tx storage.Tx) error {
		var err error
		if x, err = tx.GetDelivery(id); err != nil || x.Tenant != p.Tenant {
			return errand.Errorf(errand.ENOTFOUND, "delivery %q does not exist", errand.Truncate(id, 80))
		}
		if x.EndpointID != "" {
			if ep, err := tx.GetEndpoint(x.EndpointID); err == nil && ep.Disabled {
				return errand.Errorf(errand.ECONFLICT, "endpoint %s is disabled: enable it first", ep.ID)
			}
		}
		s.restart(x)
		return tx.UpdateDelivery(x)
	})
	if err != nil {
		return nil, err
	}
	answer := *x // taken first: once queued, x is its lane's to send (payload and all) and record
	answer.Payload = nil
	s.d.enqueue(x)
	return &answer, nil
}

// restart makes x due now (claimed by this node) at the start of the schedule.
func (s *Service) restart(x *errand.Delivery) {
	next := s.cfg.Now().Add(s.cfg.claim())
	x.Status, x.Step, x.NextAttemptAt = errand.DeliveryPending, 0, &next
}

// Recover sends again every failed delivery of an endpoint created since a
// time (at most MaxRecover); it returns how many.
func (s *Service) Recover(ctx context.Context, p errand.Principal, id string, since time.Time) (int, error) {
	if err := manage(p); err != nil {
		return 0, err
	}
	if since.IsZero() {
		return 0, fieldError("/since", "required: an RFC 3339 time")
	}
	var ds []*errand.Delivery
	err := s.store.WithTx(ctx, func(tx storage.Tx) error {
		ep, err := tx.GetEndpoint(id)
		if err != nil || ep.Tenant != p.Tenant {
			return errand.Errorf(errand.ENOTFOUND, "webhook endpoint %q does not exist", errand.Truncate(id, 80))
		}
		if ep.Disabled {
			return errand.Errorf(errand.ECONFLICT, "endpoint %s is disabled: enable it first", ep.ID)
		}
		if ds, err = tx.EndpointDeliveries(p.Tenant, id, errand.DeliveryFailed, since, MaxRecover); err != nil {
			return err
		}
		for _, x := range ds {
			s.restart(x)
			if err := tx.UpdateDelivery(x); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, x := range ds {
		s.d.enqueue(x)
	}
	return len(ds), nil
}

// CallbackSecret returns the tenant's secret for callback_url deliveries,
// creating it on first use.
func (s *Service) CallbackSecret(ctx context.Context, p errand.Principal) (*CallbackSecret, error) {
	if err := manage(p); err != nil {
		return nil, err
	}
	return s.keys.get(ctx, p.Tenant)
}

// RotateCallbackSecret gives the tenant a new callback secret; the old one keeps
// signing for the rotation overlap.
func (s *Service) RotateCallbackSecret(ctx context.Context, p errand.Principal) (*CallbackSecret, error) {
	if err := manage(p); err != nil {
		return nil, err
	}
	return s.keys.rotate(ctx, p.Tenant)
}

// CheckCallbackURL checks a job's callback_url before the job is accepted.
func (s *Service) CheckCallbackURL(ctx context.Context, raw string) error {
	if err := s.cfg.Guard.CheckURL(ctx, raw); err != nil {
		return fieldError("/callback_url", errand.ErrorMessage(err))
	}
	return nil
}

// CallbackSecret is a tenant's secret for callback_url deliveries.
type CallbackSecret struct {
	Secret string `json:"secret"`
	// Previous still signs deliveries until PreviousExpiresAt.
	Previous          string     `json:"previous_secret,omitempty"`
	PreviousExpiresAt *time.Time `json:"previous_expires_at,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
}

func (c *CallbackSecret) secrets(now time.Time) []string {
	return errand.Secrets(c.Secret, c.Previous, c.PreviousExpiresAt, now)
}

// callbackKeys keeps tenants' callback secrets in the store's settings, with a
// short cache (so a rotation on another node is seen within secretTTL).
type callbackKeys struct {
	store   storage.Store
	now     func() time.Time
	overlap time.Duration
	cache   map[string]cachedSecret
	lock    sync.Mutex
}

type cachedSecret struct {
	s  *CallbackSecret
	at time.Time
}

const secretTTL = 10 * time.Second

func secretKey(tenant string) string { return "callback_secret:" + tenant }

func (k *callbackKeys) get(ctx context.Context, tenant string) (*CallbackSecret, error) {
	k.lock.Lock()
	c, ok := k.cache[tenant]
	k.lock.Unlock()
	if ok && time.Since(c.at) < secretTTL {
		return c.s, nil
	}
	return k.update(ctx, tenant, false)
}

func (k *callbackKeys) rotate(ctx context.Context, tenant string) (*CallbackSecret, error) {
	return k.update(ctx, tenant, true)
}

// update reads the tenant's secret (creating it when missing) and, when rotate,
// replaces it; all in one transaction, so concurrent callers agree.
func (k *callbackKeys) update(ctx context.Context, tenant string, rotate bool) (*CallbackSecret, error) {
	var out *CallbackSecret
	err := k.store.WithTx(ctx, func(tx storage.Tx) error {
		now := k.now()
		out = &CallbackSecret{}
		v, err := tx.GetSetting(secretKey(tenant))
		switch {
		case errors.Is(err, storage.ErrNotFound):
			out = &CallbackSecret{Secret: signing.NewSecret(), CreatedAt: now}
		case err != nil:
			return err
		default:
			if err := json.Unmarshal([]byte(v), out); err != nil {
				return fmt.Errorf("callback secret of %s: %w", tenant, err)
			}
			if !rotate {
				return nil
			}
			exp := now.Add(k.overlap)
			out = &CallbackSecret{Secret: signing.NewSecret(), Previous: out.Secret, PreviousExpiresAt: &exp, CreatedAt: now}
		}
		b, _ := json.Marshal(out)
		return tx.PutSetting(secretKey(tenant), string(b))
	})
	if err != nil {
		return nil, err
	}
	k.lock.Lock()
	k.cache[tenant] = cachedSecret{s: out, at: time.Now()}
	k.lock.Unlock()
	return out, nil
}

// byTenantAll returns every endpoint of tenant, enabled or not.
func (s *snapshot) byTenantAll(tenant string) []*errand.Endpoint {
	var out []*errand.Endpoint
	for _, ep := range s.byID {
		if ep.Tenant == tenant {
			out = append(out, ep)
		}
	}
	return out
}

// manage is the one permission the webhooks API needs.
func manage(p errand.Principal) error {
	if !p.Can(errand.PermWebhooksManage, "") {
		return errand.Deny(errand.PermWebhooksManage, "webhooks")
	}
	return nil
}
