package webhook

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/storagetest"
)

// TestOutbox: deliveries commit with their event and roll back with it; an
// event no endpoint's filter selects gets none.
func TestOutbox(t *testing.T) { teststore.Each(t, testOutbox) }

func testOutbox(t *testing.T, s storage.Store) {
	ctx, now := context.Background(), storagetest.T0
	tenant := errand.DevPrincipal.Tenant
	ep := storagetest.Endpoint("ep_1", tenant)
	ep.Events = []string{"channel:orders.*"}
	if err := s.WithTx(ctx, func(tx storage.Tx) error { return tx.InsertEndpoint(ep) }); err != nil {
		t.Fatal(err)
	}
	o := NewOutbox(s, time.Minute, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	if err := o.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	s.Hook(o)
	publish := func(stream string, fail bool) error {
		return s.WithTx(ctx, func(tx storage.Tx) error {
			if err := tx.InsertEvent(&errand.Event{Stream: stream, Tenant: tenant, Type: "t", Time: now, Data: []byte(`{}`)}); err != nil {
				return err
			}
			if fail {
				return errors.New("boom")
			}
			return nil
		})
	}
	if err := publish("orders.eu", true); err == nil {
		t.Fatal("the failing transaction succeeded")
	}
	if err := publish("orders.eu", false); err != nil {
		t.Fatal(err)
	}
	if err := publish("invoices.eu", false); err != nil {
		t.Fatal(err)
	}
	ds, err := s.ListDeliveries(ctx, storage.ListDeliveriesParams{Tenant: tenant, Limit: 10})
	if err != nil || len(ds) != 1 || ds[0].EndpointID != "ep_1" || ds[0].Status != errand.DeliveryPending {
		t.Fatalf("deliveries = %+v, %v; want one pending for the committed orders event", ds, err)
	}
}
