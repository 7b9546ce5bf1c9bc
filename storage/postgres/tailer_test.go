package postgres

import (
	"testing"

	"github.com/errandhq/errand"
)

// The events a node holds for its tailer are bounded: while the cursor is held
// back, the rest are read back from the log instead of piling up in memory.
func TestTailerHoldsAtMostMaxHeld(t *testing.T) {
	tl := &tailer{known: map[int64]*errand.Event{}, cursor: 10}
	evs := make([]*errand.Event, maxHeld+50)
	for i := range evs {
		evs[i] = &errand.Event{Seq: int64(i + 1), Job: &errand.Job{}}
	}
	tl.keep(evs)
	if len(tl.known) != maxHeld {
		t.Fatalf("held %d events, want the bound %d", len(tl.known), maxHeld)
	}
	if tl.known[5] != nil || tl.known[11] == nil || tl.known[11].Job != nil {
		t.Fatalf("held at or below the cursor, or with the job: %v %+v", tl.known[5], tl.known[11])
	}
	tl.passTo(20)
	if len(tl.known) != maxHeld-10 || tl.cursor != 20 {
		t.Fatalf("after passing seq 20: %d held, cursor %d", len(tl.known), tl.cursor)
	}
}
