package storagetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// eventTests pin the event log: seqs, pages, floors and expiry; and settings.
var eventTests = map[string]func(*testing.T, storage.Store){
	"EventSeqs":   testEventSeqs,
	"ListEvents":  testListEvents,
	"EventExpiry": testEventExpiry,
	"Settings":    testSettings,
	"Ping":        testPing,
}

// testEventSeqs: InsertEvent sets each event's seq by the time WithTx
// returns, increasing in insertion order within a transaction and across
// transactions that commit one after another.
func testEventSeqs(t *testing.T, s storage.Store) {
	var last int64
	for round := range 3 {
		var evs []*errand.Event
		for i := range 4 {
			evs = append(evs, Event(fmt.Sprintf("s%d", i%2), fmt.Sprintf(`{"r":%d,"i":%d}`, round, i)))
		}
		seqs := insertEvents(t, s, evs...)
		for i, seq := range seqs {
			if seq <= last {
				t.Fatalf("round %d, event %d: seq %d after %d; want increasing", round, i, seq, last)
			}
			last = seq
		}
	}
}

// testListEvents: a stream's events of one tenant after a cursor, oldest
// first, up to limit, with what was stored.
func testListEvents(t *testing.T, s storage.Store) {
	exp := T0.Add(time.Hour)
	a := []*errand.Event{Event("orders", `{"n":1}`), Event("orders", `{"n":2}`), Event("other", `{}`), Event("orders", `{"n":3}`)}
	a[1].ExpiresAt, a[1].Type, a[1].Time = &exp, "order.paid", T0.Add(time.Second)
	elsewhere := Event("orders", `{"n":9}`)
	elsewhere.Tenant = "globex"
	seqs := insertEvents(t, s, append(a, elsewhere)...)
	list := func(after int64, limit int) []*errand.Event {
		t.Helper()
		evs, err := s.ListEvents(ctx, storage.ListEventsParams{Tenant: "acme", Stream: "orders", After: after, Limit: limit})
		if err != nil {
			t.Fatalf("ListEvents: %v", err)
		}
		return evs
	}
	seqsOf := func(evs []*errand.Event) []int64 {
		out := []int64{}
		for _, e := range evs {
			out = append(out, e.Seq)
		}
		return out
	}
	for _, c := range []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 10, []int64{seqs[0], seqs[1], seqs[3]}},
		{0, 2, []int64{seqs[0], seqs[1]}},
		{seqs[0], 10, []int64{seqs[1], seqs[3]}},
		{seqs[3], 10, []int64{}},
	} {
		if got := seqsOf(list(c.after, c.limit)); !slices.Equal(got, c.want) {
			t.Errorf("ListEvents(after %d, limit %d) = %v, want %v", c.after, c.limit, got, c.want)
		}
	}
	got := list(seqs[0], 1)[0]
	if got.Stream != "orders" || got.Tenant != "acme" || got.Type != "order.paid" || !got.Time.Equal(T0.Add(time.Second)) ||
		string(got.Data) != `{"n":2}` {
		t.Errorf("ListEvents read back %+v, stored as %+v", got, a[1])
	}
}

// testEventExpiry: ExpireEvents deletes events whose expires_at is before
// now (up to limit) and raises their streams' floors to the highest seq it
// deleted; other streams and tenants keep theirs.
func testEventExpiry(t *testing.T, s storage.Store) {
	soon, later := T0.Add(time.Minute), T0.Add(time.Hour)
	var evs []*errand.Event
	for i, exp := range []*time.Time{&soon, &soon, &later, nil, &soon} {
		e := Event("orders.created", fmt.Sprint(i))
		e.ExpiresAt = exp
		if i == 4 {
			e.Tenant = "globex"
		}
		evs = append(evs, e)
	}
	seqs := insertEvents(t, s, evs...)
	if f, err := s.StreamFloor(ctx, "acme", "orders.created"); err != nil || f != 0 {
		t.Fatalf("floor before expiry = %d, %v; want 0", f, err)
	}
	if n := read(t, s, func(tx storage.Tx) (int, error) { return tx.ExpireEvents(soon, 100) }); n != 0 {
		t.Errorf("ExpireEvents at the expiry time = %d, want 0 (before now only)", n)
	}
	if n := read(t, s, func(tx storage.Tx) (int, error) { return tx.ExpireEvents(T0.Add(2*time.Minute), 2) }); n != 2 {
		t.Errorf("ExpireEvents(limit 2) = %d, want 2", n)
	}
	if n := read(t, s, func(tx storage.Tx) (int, error) { return tx.ExpireEvents(T0.Add(2*time.Minute), 100) }); n != 1 {
		t.Errorf("ExpireEvents (the rest) = %d, want 1", n)
	}
	if f, _ := s.StreamFloor(ctx, "acme", "orders.created"); f != seqs[1] {
		t.Errorf("acme's floor = %d, want %d (the last deleted)", f, seqs[1])
	}
	if f, _ := s.StreamFloor(ctx, "globex", "orders.created"); f != seqs[4] {
		t.Errorf("globex's floor = %d, want %d", f, seqs[4])
	}
	if f, _ := s.StreamFloor(ctx, "acme", "other"); f != 0 {
		t.Errorf("another stream's floor = %d, want 0", f)
	}
	left, _ := s.ListEvents(ctx, storage.ListEventsParams{Tenant: "acme", Stream: "orders.created", Limit: 10})
	if len(left) != 2 || left[0].Seq != seqs[2] || left[1].Seq != seqs[3] {
		t.Errorf("events left = %d, want the 2 not expired", len(left))
	}
	// A floor never moves back: a newer event expires first, then an older one.
	newer := Event("orders.created", `{}`)
	newer.ExpiresAt = &soon
	insertEvents(t, s, newer)
	read(t, s, func(tx storage.Tx) (int, error) { return tx.ExpireEvents(T0.Add(2*time.Minute), 100) })
	read(t, s, func(tx storage.Tx) (int, error) { return tx.ExpireEvents(later.Add(time.Minute), 100) })
	if f, _ := s.StreamFloor(ctx, "acme", "orders.created"); f != newer.Seq {
		t.Errorf("floor after an older event expired = %d, want %d (it never moves back)", f, newer.Seq)
	}
}

// testSettings: GetSetting of a missing key is ErrNotFound; PutSetting
// replaces; Store.Setting keeps the first value any caller stored.
func testSettings(t *testing.T, s storage.Store) {
	err := s.WithTx(ctx, func(tx storage.Tx) error { _, err := tx.GetSetting("k"); return err })
	wantNotFound(t, "GetSetting of a missing key", err)
	tx(t, s, func(tx storage.Tx) error { return tx.PutSetting("k", "1") })
	tx(t, s, func(tx storage.Tx) error { return tx.PutSetting("k", "2") })
	if v := read(t, s, func(tx storage.Tx) (string, error) { return tx.GetSetting("k") }); v != "2" {
		t.Errorf("GetSetting after two PutSettings = %q, want 2", v)
	}
	if v, err := s.Setting(ctx, "k", "3"); err != nil || v != "2" {
		t.Errorf("Setting of a stored key = %q, %v; want 2", v, err)
	}
	got := make([]string, 16)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			v, err := s.Setting(ctx, "new", fmt.Sprint(i))
			if err != nil {
				t.Errorf("Setting: %v", err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] {
			t.Fatalf("concurrent Settings of a new key returned %v; want one value", got)
		}
	}
	if v := read(t, s, func(tx storage.Tx) (string, error) { return tx.GetSetting("new") }); v != got[0] {
		t.Errorf("GetSetting after Setting = %q, want %q", v, got[0])
	}
}

func testPing(t *testing.T, s storage.Store) {
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping = %v", err)
	}
}
