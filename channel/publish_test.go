package channel_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/storage"
)

// TestPublishMany: one transaction appends the messages in order; an invalid
// message is answered alone; ErrSkip from InTx appends nothing for its
// message; what InTx writes commits with the events.
func TestPublishMany(t *testing.T) {
	teststore.Each(t, func(t *testing.T, s storage.Store) {
		svc, err := channel.NewService(s, []errand.Channel{{Pattern: "orders", History: time.Hour,
			Schema: json.RawMessage(`{"type":"object"}`)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := errand.Principal{ID: "bridge:b", Tenant: "acme", Permissions: []string{"channels:publish:orders", "channels:subscribe:orders"}}
		seen := func(id string) func(storage.Tx) error {
			return func(tx storage.Tx) error {
				was, err := tx.SeenMessage("b", id, time.Now(), time.Now().Add(time.Hour))
				if was {
					return channel.ErrSkip
				}
				return err
			}
		}
		ctx := context.Background()
		msgs := []channel.Message{
			{Channel: "orders", Type: "a", Data: json.RawMessage(`{"n":1}`), InTx: seen("m1")},
			{Channel: "orders", Type: "a", Data: json.RawMessage(`"not an object"`)},
			{Channel: "orders", Type: "a", Data: json.RawMessage(`{"n":2}`), InTx: seen("m1")}, // the same message again
			{Channel: "orders", Type: "a", Data: json.RawMessage(`{"n":3}`), InTx: seen("m2")},
		}
		evs, errs, err := svc.PublishMany(ctx, p, msgs)
		if err != nil {
			t.Fatalf("PublishMany: %v", err)
		}
		if errs[0] != nil || evs[0] == nil || errand.ErrorCode(errs[1]) != errand.EVALIDATION || !errors.Is(errs[2], channel.ErrSkip) ||
			evs[2] != nil || errs[3] != nil || evs[3].Seq <= evs[0].Seq {
			t.Fatalf("PublishMany answered %v / %v", evs, errs)
		}
		hist, err := svc.History(ctx, p, "orders", 0, 10)
		if err != nil || len(hist) != 2 || string(hist[0].Data) != `{"n":1}` || string(hist[1].Data) != `{"n":3}` {
			t.Fatalf("history = %v, %v; want n 1 and 3", hist, err)
		}
		_, _, err = svc.PublishMany(ctx, p, []channel.Message{{Channel: "orders", Type: "a", Data: json.RawMessage(`{}`), InTx: seen("m2")}})
		if err != nil {
			t.Fatal(err)
		}
		if hist, _ := svc.History(ctx, p, "orders", 0, 10); len(hist) != 2 {
			t.Fatalf("a message seen in an earlier transaction was appended again: %d events", len(hist))
		}
	})
}
