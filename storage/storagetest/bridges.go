package storagetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand/storage"
)

// bridgeTests pin what broker bridges keep: the whole log in order, route
// cursors, seen messages and owed replies.
var bridgeTests = map[string]func(*testing.T, storage.Store){
	"ListLog":          testListLog,
	"BridgeCursor":     testBridgeCursor,
	"SeenMessage":      testSeenMessage,
	"SeenConcurrently": testSeenConcurrently,
	"BridgeReplies":    testBridgeReplies,
}

// testListLog: every tenant's and stream's events after a cursor, in seq
// order, up to limit; a job event carries its job's operation.
func testListLog(t *testing.T, s storage.Store) {
	insertJobs(t, s, Job("job_1"))
	other := Event("orders", `{"n":2}`)
	other.Tenant = "globex"
	seqs := insertEvents(t, s, Event("job_1", `{}`), other, Event("orders", `{"n":3}`), Event("job_gone", `{}`))
	evs, err := s.ListLog(ctx, 0, 10)
	if err != nil {
		t.Fatalf("ListLog: %v", err)
	}
	var got []int64
	for _, e := range evs {
		got = append(got, e.Seq)
	}
	if !slices.Equal(got, seqs) {
		t.Fatalf("ListLog(0, 10) seqs = %v, want %v", got, seqs)
	}
	if evs[0].Operation != "report" || evs[1].Operation != "" || evs[3].Operation != "" {
		t.Errorf("operations = %q %q %q, want report, none (a channel), none (no such job)", evs[0].Operation, evs[1].Operation, evs[3].Operation)
	}
	if evs[1].Tenant != "globex" || string(evs[1].Data) != `{"n":2}` || !evs[1].Time.Equal(T0) || evs[1].Type != "test" {
		t.Errorf("event read back = %+v", evs[1].Event)
	}
	if page, _ := s.ListLog(ctx, seqs[0], 2); len(page) != 2 || page[0].Seq != seqs[1] || page[1].Seq != seqs[2] {
		t.Errorf("ListLog(after %d, limit 2) = %v, want seqs %v", seqs[0], page, seqs[1:3])
	}
}

// testBridgeCursor: a stored cursor reads back; a lower one does not move it
// back; a route without one is not found.
func testBridgeCursor(t *testing.T, s storage.Store) {
	_, err := s.BridgeCursor(ctx, "b/publish/0")
	wantNotFound(t, "BridgeCursor of a new route", err)
	put := func(seq int64) {
		tx(t, s, func(tx storage.Tx) error { return tx.PutBridgeCursor("b/publish/0", seq, T0) })
	}
	for _, c := range []struct{ put, want int64 }{{5, 5}, {9, 9}, {7, 9}} {
		put(c.put)
		if got, err := s.BridgeCursor(ctx, "b/publish/0"); err != nil || got != c.want {
			t.Errorf("after PutBridgeCursor(%d): BridgeCursor = %d, %v; want %d", c.put, got, err, c.want)
		}
	}
}

// testSeenMessage: the first record of an id is not a redelivery, the next
// one is, per scope; an expired record counts as none and is deleted by
// ExpireSeenMessages.
func testSeenMessage(t *testing.T, s storage.Store) {
	seen := func(scope, id string, now time.Time) bool {
		t.Helper()
		return read(t, s, func(tx storage.Tx) (bool, error) { return tx.SeenMessage(scope, id, now, now.Add(time.Minute)) })
	}
	for _, c := range []struct {
		scope, id string
		at        time.Duration
		want      bool
	}{
		{"a", "m1", 0, false}, {"a", "m1", time.Second, true}, {"b", "m1", 0, false}, {"a", "m2", 0, false},
		{"a", "m1", 2 * time.Minute, false}, // expired: recorded again
		{"a", "m1", 2*time.Minute + time.Second, true},
	} {
		if got := seen(c.scope, c.id, T0.Add(c.at)); got != c.want {
			t.Errorf("SeenMessage(%s, %s) at +%s = %v, want %v", c.scope, c.id, c.at, got, c.want)
		}
	}
	n := read(t, s, func(tx storage.Tx) (int, error) { return tx.ExpireSeenMessages(T0.Add(90*time.Second), 10) })
	if n != 2 { // a/m2 and b/m1; a/m1 lives to +3m1s
		t.Errorf("ExpireSeenMessages = %d, want 2", n)
	}
	if seen("a", "m2", T0.Add(91*time.Second)) {
		t.Errorf("an expired record still counts")
	}
}

// testSeenConcurrently: transactions recording the same id at once see it
// new exactly once.
func testSeenConcurrently(t *testing.T, s storage.Store) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var was bool
			err := s.WithTx(ctx, func(tx storage.Tx) error {
				var err error
				was, err = tx.SeenMessage("a", "same", T0, T0.Add(time.Hour))
				return err
			})
			if err != nil {
				t.Errorf("SeenMessage: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if !was {
				fresh++
			}
		}()
	}
	wg.Wait()
	if fresh != 1 {
		t.Fatalf("%d of 8 concurrent records of one id were new, want 1", fresh)
	}
}

// testBridgeReplies: a reply owed reads back with its correlation, is owed
// once per job, is deleted (then not found) and expires by age.
func testBridgeReplies(t *testing.T, s storage.Store) {
	r := &storage.BridgeReply{JobID: "job_1", Bridge: "b", Address: "replies.1", Correlation: []byte{0, 1, 2}, CreatedAt: T0}
	tx(t, s, func(tx storage.Tx) error { return tx.InsertBridgeReply(r) })
	got, err := s.GetBridgeReply(ctx, "job_1")
	if err != nil || got.Bridge != "b" || got.Address != "replies.1" || string(got.Correlation) != "\x00\x01\x02" || !got.CreatedAt.Equal(T0) {
		t.Fatalf("GetBridgeReply = %+v, %v; want %+v", got, err, r)
	}
	if err := s.WithTx(ctx, func(tx storage.Tx) error { return tx.InsertBridgeReply(r) }); err == nil {
		t.Errorf("a second reply for one job was stored")
	}
	tx(t, s, func(tx storage.Tx) error {
		return tx.InsertBridgeReply(&storage.BridgeReply{JobID: "job_2", Bridge: "b", Address: "x", CreatedAt: T0.Add(time.Hour)})
	})
	if got, _ := s.GetBridgeReply(ctx, "job_2"); got == nil || got.Correlation != nil {
		t.Errorf("a reply without correlation reads back as %+v", got)
	}
	tx(t, s, func(tx storage.Tx) error { return tx.DeleteBridgeReply("job_1") })
	_, err = s.GetBridgeReply(ctx, "job_1")
	wantNotFound(t, "GetBridgeReply after DeleteBridgeReply", err)
	err = s.WithTx(ctx, func(tx storage.Tx) error { return tx.DeleteBridgeReply("job_1") })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteBridgeReply of a missing reply = %v, want ErrNotFound", err)
	}
	n := read(t, s, func(tx storage.Tx) (int, error) { return tx.ExpireBridgeReplies(T0.Add(2*time.Hour), 10) })
	if n != 1 {
		t.Errorf("ExpireBridgeReplies = %d, want 1", n)
	}
}
