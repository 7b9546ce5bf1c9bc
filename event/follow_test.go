package event_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/sqlite"
)

func open(t *testing.T) (*sqlite.Store, *event.Hub) {
	s := teststore.Open(t)
	hub := event.NewHub()
	s.Listen(hub)
	return s, hub
}

func publish(t *testing.T, s *sqlite.Store, stream string, exp *time.Time) int64 {
	e := &errand.Event{Stream: stream, Tenant: "t", Type: "x", Time: time.Now(), Data: []byte(`{}`), ExpiresAt: exp}
	if err := s.WithTx(context.Background(), func(tx storage.Tx) error { return tx.InsertEvent(e) }); err != nil {
		t.Fatal(err)
	}
	return e.Seq
}

// TestFollowHistoryThenLive: history and live events arrive once each, in order,
// even with a buffer of one (every burst overflows and is caught up from the store).
func TestFollowHistoryThenLive(t *testing.T) {
	s, hub := open(t)
	var want []int64
	for range 5 {
		want = append(want, publish(t, s, "c", nil))
	}
	var got []int64
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ready := make(chan struct{})
	f := &event.Follow{Store: s, Hub: hub, Tenant: "t", Stream: "c", Buffer: 1, Send: func(d *event.Frame) error {
		got = append(got, d.Seq)
		if len(got) == 5 {
			close(ready)
		}
		if len(got) == 205 {
			cancel()
		}
		time.Sleep(100 * time.Microsecond) // a slow reader
		return nil
	}}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	<-ready
	for range 200 {
		want = append(want, publish(t, s, "c", nil))
	}
	<-done
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %d, want %d", i, got[i], want[i])
		}
	}
}

// TestFollowCursorTooOld: a cursor from before what retention kept is refused.
func TestFollowCursorTooOld(t *testing.T) {
	s, hub := open(t)
	past := time.Now().Add(-time.Hour)
	first := publish(t, s, "c", &past)
	publish(t, s, "c", &past)
	s.WithTx(context.Background(), func(tx storage.Tx) error {
		_, err := tx.ExpireEvents(time.Now(), 10)
		return err
	})
	f := &event.Follow{Store: s, Hub: hub, Tenant: "t", Stream: "c", After: first, Send: func(*event.Frame) error { return nil }}
	var old *event.CursorTooOld
	if err := f.Run(context.Background()); !errors.As(err, &old) || old.Floor != first+1 {
		t.Fatalf("Run from a deleted cursor = %v, want CursorTooOld{Floor: %d}", err, first+1)
	}
}
