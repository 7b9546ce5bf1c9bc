package event_test

import (
	"context"
	"errors"
	"slices"
	"strings"
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

// TestFollowPagesByBytes: history read a page of one event at a time (each is
// larger than PageBytes) still arrives whole and in order, then live events.
func TestFollowPagesByBytes(t *testing.T) {
	s, hub := open(t)
	big := []byte(`"` + strings.Repeat("x", 4000) + `"`)
	var want []int64
	for range 30 {
		e := &errand.Event{Stream: "c", Tenant: "t", Type: "x", Time: time.Now(), Data: big}
		if err := s.WithTx(context.Background(), func(tx storage.Tx) error { return tx.InsertEvent(e) }); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.Seq)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []int64
	f := &event.Follow{Store: s, Hub: hub, Tenant: "t", Stream: "c", PageBytes: 1000, BufferBytes: 1000,
		Send: func(d *event.Frame) error {
			got = append(got, d.Seq)
			if len(got) == 30 {
				want = append(want, publish(t, s, "c", nil)) // live: the hub has it, the history read did not
			}
			if len(got) == 31 {
				cancel()
			}
			return nil
		}}
	f.Run(ctx)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d events (%v…), want %d", len(got), got[:min(len(got), 3)], len(want))
	}
}

// TestFollowCursorAhead: a cursor beyond the log's head (a backup restored
// since it was handed out) is refused, and says where the head is.
func TestFollowCursorAhead(t *testing.T) {
	s, hub := open(t)
	head := publish(t, s, "other", nil)
	f := &event.Follow{Store: s, Hub: hub, Tenant: "t", Stream: "c", After: head + 10, Send: func(*event.Frame) error { return nil }}
	var ahead *event.CursorAhead
	if err := f.Run(context.Background()); !errors.As(err, &ahead) || ahead.Head != head {
		t.Fatalf("Run after a cursor beyond the head = %v, want CursorAhead{Head: %d}", err, head)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	f.After = head // the head itself is a fine place to resume
	if err := f.Run(ctx); err != nil {
		t.Fatalf("Run after the head = %v, want it to follow until canceled", err)
	}
}

// TestFollowLive: a live reader gets what commits after it starts, none of the
// history, and once caught up from the store (a buffer of one overflows) it
// still loses nothing and repeats nothing.
func TestFollowLive(t *testing.T) {
	s, hub := open(t)
	for range 5 {
		publish(t, s, "c", nil)
	}
	publish(t, s, "c-other", nil) // another stream's events move the log on
	var got, want []int64
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := &event.Follow{Store: s, Hub: hub, Tenant: "t", Stream: "c", Live: true, Buffer: 1, Send: func(d *event.Frame) error {
		got = append(got, d.Seq)
		if len(got) == 100 {
			cancel()
		}
		time.Sleep(100 * time.Microsecond)
		return nil
	}}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	for hub.Subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	for range 100 {
		want = append(want, publish(t, s, "c", nil))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %d, want %d", i, got[i], want[i])
		}
	}
}
