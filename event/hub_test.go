package event_test

import (
	"strings"
	"testing"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/storage"
)

func sized(seq int64, n int) *errand.Event {
	return &errand.Event{Seq: seq, Stream: "c", Tenant: "t", Type: "x", Data: []byte(`"` + strings.Repeat("x", n-2) + `"`)}
}

// TestHubBufferBytes: a subscription's buffer is bounded in bytes as well as in
// events: one event always fits, the next that would pass the bound cuts the
// subscriber off; a reader that takes its events (Received) keeps up.
func TestHubBufferBytes(t *testing.T) {
	hub := event.NewHub()
	slow := hub.Subscribe("c", 100, 1000)
	fast := hub.Subscribe("c", 100, 1000)
	huge := hub.Subscribe("c", 100, 1000)
	defer fast.Close()
	hub.Committed(&storage.Commit{Events: []*errand.Event{sized(1, 5000)}})
	if huge.Reset() || len(huge.C()) != 1 {
		t.Fatalf("an event larger than the bound did not fit in an empty buffer (reset %v, %d waiting)", huge.Reset(), len(huge.C()))
	}
	huge.Close()
	for d := range fast.C() {
		fast.Received(d)
		break
	}
	<-slow.C() // taken without Received: still counts
	for i := range 5 {
		hub.Committed(&storage.Commit{Events: []*errand.Event{sized(int64(i+2), 600)}})
		d := <-fast.C()
		fast.Received(d)
	}
	if !slow.Reset() {
		t.Fatalf("a subscriber holding 6 events of 600 bytes against a bound of 1000 was not cut off")
	}
	if fast.Reset() {
		t.Fatalf("a subscriber that took every event was cut off")
	}
	n := 0
	for range slow.C() {
		n++
	}
	if n != 1 {
		t.Fatalf("the cut-off subscriber had %d events waiting, want 1 (a second would pass 1000 bytes)", n)
	}
}

// TestHubAllJobs: a subscriber of AllJobs receives every job's events, once
// each, in log order, and no channel's.
func TestHubAllJobs(t *testing.T) {
	hub := event.NewHub()
	all := hub.Subscribe(event.AllJobs, 10, 0)
	one := hub.Subscribe("job_A", 10, 0)
	defer all.Close()
	defer one.Close()
	hub.Committed(&storage.Commit{Events: []*errand.Event{
		{Seq: 1, Stream: "job_A", Tenant: "t"}, {Seq: 2, Stream: "orders", Tenant: "t"}, {Seq: 3, Stream: "job_B", Tenant: "u"}}})
	var got []int64
	for len(all.C()) > 0 {
		got = append(got, (<-all.C()).Event.Seq)
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Errorf("AllJobs received %v, want [1 3]", got)
	}
	if len(one.C()) != 1 {
		t.Errorf("job_A's subscriber has %d events, want 1", len(one.C()))
	}
}
