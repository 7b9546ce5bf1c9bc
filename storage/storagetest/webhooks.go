package storagetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// webhookTests pin the webhook tables: endpoints, deliveries, attempts.
var webhookTests = map[string]func(*testing.T, storage.Store){
	"WebhookEndpoints":  testWebhookEndpoints,
	"WebhookDeliveries": testWebhookDeliveries,
	"WebhookExpire":     testWebhookExpire,
}

// Endpoint is an endpoint of tenant for job events, made at T0.
func Endpoint(id, tenant string) *errand.Endpoint {
	return &errand.Endpoint{ID: id, Tenant: tenant, URL: "https://example.com/" + id, Events: []string{"job.*"},
		Secret: "whsec_a", CreatedAt: T0, UpdatedAt: T0}
}

func testWebhookEndpoints(t *testing.T, s storage.Store) {
	now := T0
	tx(t, s, func(tx storage.Tx) error {
		for _, e := range []*errand.Endpoint{Endpoint("ep_1", "a"), Endpoint("ep_2", "a"), Endpoint("ep_3", "b")} {
			if err := tx.InsertEndpoint(e); err != nil {
				return err
			}
		}
		return nil
	})
	ids := func(eps []*errand.Endpoint) (out []string) {
		for _, e := range eps {
			out = append(out, e.ID)
		}
		return out
	}
	a, err := s.ListEndpoints(ctx, "a")
	all, err2 := s.ListEndpoints(ctx, "")
	if err != nil || err2 != nil || !slices.Equal(ids(a), []string{"ep_1", "ep_2"}) || len(all) != 3 {
		t.Fatalf("ListEndpoints = %v, %v (all %d, %v)", ids(a), err, len(all), err2)
	}
	if _, err := s.GetEndpoint(ctx, "b", "ep_1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetEndpoint of another tenant = %v, want ErrNotFound", err)
	}
	later, exp := now.Add(time.Hour), now.Add(24*time.Hour)
	tx(t, s, func(tx storage.Tx) error {
		e, err := tx.GetEndpoint("ep_1")
		if err != nil {
			return err
		}
		e.URL, e.Description, e.Events, e.Disabled, e.DisabledReason = "https://example.org/x", "d", []string{"channel:orders.*"}, true, "gone"
		e.RateLimit, e.FailingSince, e.PreviousSecret, e.PreviousExpiresAt, e.Secret, e.UpdatedAt = 5, &now, "whsec_a", &exp, "whsec_b", later
		return tx.UpdateEndpoint(e)
	})
	got, err := s.GetEndpoint(ctx, "a", "ep_1")
	if err != nil || got.URL != "https://example.org/x" || got.Description != "d" || !slices.Equal(got.Events, []string{"channel:orders.*"}) ||
		!got.Disabled || got.DisabledReason != "gone" || got.RateLimit != 5 || !got.FailingSince.Equal(now) ||
		got.Secret != "whsec_b" || got.PreviousSecret != "whsec_a" || !got.PreviousExpiresAt.Equal(exp) || !got.UpdatedAt.Equal(later) {
		t.Fatalf("after update: %+v, %v", got, err)
	}
	tx(t, s, func(tx storage.Tx) error {
		if e, err := tx.GetEndpoint("ep_3"); err != nil || e.Tenant != "b" {
			t.Errorf("Tx.GetEndpoint of tenant b's endpoint = %+v, %v; want it (any tenant)", e, err)
		}
		_, err := tx.GetEndpoint("ep_9")
		wantNotFound(t, "Tx.GetEndpoint of a missing endpoint", err)
		return nil
	})
	if eps, err := s.ListEndpoints(ctx, "c"); err != nil || len(eps) != 0 {
		t.Errorf("ListEndpoints of a tenant without endpoints = %v, %v", eps, err)
	}
	err = s.WithTx(ctx, func(tx storage.Tx) error { return tx.UpdateEndpoint(Endpoint("ep_9", "a")) })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateEndpoint of a missing endpoint = %v", err)
	}
	err = s.WithTx(ctx, func(tx storage.Tx) error { return tx.DeleteEndpoint("b", "ep_1") })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("DeleteEndpoint of another tenant's = %v", err)
	}
	tx(t, s, func(tx storage.Tx) error {
		if err := tx.InsertDelivery(Delivery("msg_1", "ep_1", now, now)); err != nil {
			return err
		}
		return tx.InsertAttempt("msg_1", &errand.Attempt{N: 1, Time: now, StatusCode: 500})
	})
	tx(t, s, func(tx storage.Tx) error { return tx.DeleteEndpoint("a", "ep_1") })
	if _, err := s.GetDelivery(ctx, "a", "msg_1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a deleted endpoint's delivery: %v, want ErrNotFound", err)
	}
	if as, err := s.ListAttempts(ctx, []string{"msg_1"}); err != nil || len(as["msg_1"]) != 0 {
		t.Fatalf("a deleted endpoint's attempts: %v, %v", as, err)
	}
}

// Delivery is a pending delivery of tenant "a" to endpoint ep ("" for a
// callback) made at created, due at next.
func Delivery(id, ep string, created, next time.Time) *errand.Delivery {
	return &errand.Delivery{ID: id, Tenant: "a", EndpointID: ep, JobID: "job_" + id, EventType: "job.succeeded",
		Status: errand.DeliveryPending, NextAttemptAt: &next, CreatedAt: created, Payload: []byte(`{"n":"` + id + `"}`)}
}

func testWebhookDeliveries(t *testing.T, s storage.Store) {
	now := T0
	tx(t, s, func(tx storage.Tx) error {
		for _, d := range []*errand.Delivery{
			Delivery("msg_1", "ep_1", now, now.Add(2*time.Second)),
			Delivery("msg_2", "ep_1", now.Add(time.Second), now.Add(-time.Second)),
			Delivery("msg_3", "ep_2", now.Add(2*time.Second), now),
			Delivery("msg_4", "", now.Add(3*time.Second), now.Add(time.Hour)),
		} {
			if err := tx.InsertDelivery(d); err != nil {
				return err
			}
		}
		return nil
	})
	if next, err := s.NextDelivery(ctx); err != nil || !next.Equal(now.Add(-time.Second)) {
		t.Fatalf("NextDelivery = %v, %v", next, err)
	}
	var due []*errand.Delivery
	tx(t, s, func(tx storage.Tx) error {
		var err error
		due, err = tx.DueDeliveries(now, 10)
		return err
	})
	if len(due) != 2 || due[0].ID != "msg_2" || due[1].ID != "msg_3" || string(due[0].Payload) != `{"n":"msg_2"}` {
		t.Fatalf("DueDeliveries = %v, want msg_2, msg_3 with payloads", due)
	}
	tx(t, s, func(tx storage.Tx) error {
		d, err := tx.GetDelivery("msg_2")
		if err != nil {
			return err
		}
		d.Status, d.AttemptCount, d.Step, d.NextAttemptAt, d.LastAttemptAt = errand.DeliveryFailed, 2, 2, nil, &now
		if err := tx.UpdateDelivery(d); err != nil {
			return err
		}
		for n := 1; n <= 2; n++ {
			if err := tx.InsertAttempt("msg_2", &errand.Attempt{N: n, Time: now.Add(time.Duration(n) * time.Second),
				StatusCode: 500, LatencyMS: 1.5, Error: "answered 500", Response: "oops"}); err != nil {
				return err
			}
		}
		return nil
	})
	wantNotFound(t, "UpdateDelivery of a missing delivery", s.WithTx(ctx, func(tx storage.Tx) error {
		return tx.UpdateDelivery(Delivery("msg_9", "ep_1", now, now))
	}))
	tx(t, s, func(tx storage.Tx) error {
		_, err := tx.GetDelivery("msg_9")
		wantNotFound(t, "Tx.GetDelivery of a missing delivery", err)
		return nil
	})
	if as, err := s.ListAttempts(ctx, nil); err != nil || len(as) != 0 {
		t.Errorf("ListAttempts(none) = %v, %v", as, err)
	}
	got, err := s.GetDelivery(ctx, "a", "msg_2")
	if err != nil || got.Status != errand.DeliveryFailed || got.AttemptCount != 2 || got.Step != 2 || got.NextAttemptAt != nil ||
		!got.LastAttemptAt.Equal(now) || got.JobID != "job_msg_2" || string(got.Payload) != `{"n":"msg_2"}` {
		t.Fatalf("GetDelivery = %+v, %v", got, err)
	}
	if _, err := s.GetDelivery(ctx, "b", "msg_2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetDelivery of another tenant = %v", err)
	}
	as, err := s.ListAttempts(ctx, []string{"msg_2", "msg_1"})
	if err != nil || len(as["msg_2"]) != 2 || as["msg_2"][0].N != 1 || as["msg_2"][1].LatencyMS != 1.5 ||
		as["msg_2"][1].Response != "oops" || !as["msg_2"][1].Time.Equal(now.Add(2*time.Second)) || len(as["msg_1"]) != 0 {
		t.Fatalf("ListAttempts = %+v, %v", as, err)
	}
	list := func(p storage.ListDeliveriesParams) []string {
		t.Helper()
		p.Tenant, p.Limit = "a", 10
		ds, err := s.ListDeliveries(ctx, p)
		if err != nil {
			t.Fatalf("ListDeliveries(%+v): %v", p, err)
		}
		var ids []string
		for _, d := range ds {
			if d.Payload != nil {
				t.Fatalf("ListDeliveries carries payloads")
			}
			ids = append(ids, d.ID)
		}
		return ids
	}
	for _, c := range []struct {
		p    storage.ListDeliveriesParams
		want []string
	}{
		{storage.ListDeliveriesParams{}, []string{"msg_4", "msg_3", "msg_2", "msg_1"}},
		{storage.ListDeliveriesParams{EndpointID: "ep_1"}, []string{"msg_2", "msg_1"}},
		{storage.ListDeliveriesParams{JobID: "job_msg_3"}, []string{"msg_3"}},
		{storage.ListDeliveriesParams{Status: errand.DeliveryFailed}, []string{"msg_2"}},
		{storage.ListDeliveriesParams{Before: "msg_3"}, []string{"msg_2", "msg_1"}},
	} {
		if got := list(c.p); !slices.Equal(got, c.want) {
			t.Errorf("ListDeliveries(%+v) = %v, want %v", c.p, got, c.want)
		}
	}
	tx(t, s, func(tx storage.Tx) error {
		ds, err := tx.EndpointDeliveries("a", "ep_1", errand.DeliveryFailed, now.Add(time.Second), 10)
		if err != nil || len(ds) != 1 || ds[0].ID != "msg_2" || len(ds[0].Payload) == 0 {
			t.Errorf("EndpointDeliveries(failed, since +1s) = %v, %v", ds, err)
		}
		ds, err = tx.EndpointDeliveries("a", "ep_1", errand.DeliveryFailed, now.Add(2*time.Second), 10)
		if err != nil || len(ds) != 0 {
			t.Errorf("EndpointDeliveries(failed, since +2s) = %v, %v", ds, err)
		}
		return nil
	})
}

func testWebhookExpire(t *testing.T, s storage.Store) {
	now := T0
	tx(t, s, func(tx storage.Tx) error {
		for i, st := range []errand.DeliveryStatus{errand.DeliverySucceeded, errand.DeliveryFailed, errand.DeliveryPending} {
			d := Delivery("msg_old"+string(rune('a'+i)), "ep_1", now.Add(-time.Hour), now)
			d.Status = st
			if err := tx.InsertDelivery(d); err != nil {
				return err
			}
			if err := tx.InsertAttempt(d.ID, &errand.Attempt{N: 1, Time: now}); err != nil {
				return err
			}
		}
		return tx.InsertDelivery(Delivery("msg_new", "ep_1", now, now))
	})
	var n int
	tx(t, s, func(tx storage.Tx) error {
		var err error
		n, err = tx.ExpireDeliveries(now.Add(-time.Minute), 10)
		return err
	})
	ds, err := s.ListDeliveries(ctx, storage.ListDeliveriesParams{Tenant: "a", Limit: 10})
	if n != 2 || err != nil || len(ds) != 2 {
		t.Fatalf("ExpireDeliveries deleted %d (want the 2 finished old ones); left %d, %v", n, len(ds), err)
	}
	if as, _ := s.ListAttempts(ctx, []string{"msg_olda", "msg_oldc"}); len(as["msg_olda"]) != 0 || len(as["msg_oldc"]) != 1 {
		t.Fatalf("attempts after expiry: %v", as)
	}
}
