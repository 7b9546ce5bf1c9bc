package postgres

import (
	"testing"
	"time"
)

// TestNormalGroupsGiveWay: with no urgent call lately every writer may run a
// group of the others; within urgentWindow of one, a single writer may.
func TestNormalGroupsGiveWay(t *testing.T) {
	s := &Store{cfg: Config{Writers: 4}}
	for i := range 4 {
		if !s.takeNormal() {
			t.Fatalf("quiet: writer %d was refused a group; want all 4 to run one", i)
		}
	}
	if s.takeNormal() {
		t.Fatal("a fifth group ran beside 4 writers' own")
	}
	s.normalRunning.Store(0)
	s.lastUrgent.Store(time.Now().UnixNano())
	if !s.takeNormal() {
		t.Fatal("right after an urgent call: no writer may run a group of the others; want one")
	}
	if s.takeNormal() {
		t.Fatal("right after an urgent call: two writers run groups of the others; want one")
	}
	s.normalRunning.Store(0)
	s.lastUrgent.Store(time.Now().Add(-2 * urgentWindow).UnixNano())
	for i := range 4 {
		if !s.takeNormal() {
			t.Fatalf("%v after the last urgent call: writer %d refused; want all 4 again", 2*urgentWindow, i)
		}
	}
}
