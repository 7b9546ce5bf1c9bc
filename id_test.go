package errand

import (
	"testing"
	"time"
)

func TestIDsSortAndValidate(t *testing.T) {
	var g IDGenerator
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 10000 {
		id := g.New("job", now.Add(time.Duration(i/5000)*time.Millisecond))
		if !ValidID("job", id) {
			t.Fatalf("ValidID(%q) = false for an id we made", id)
		}
		if id <= prev {
			t.Fatalf("id %d %q does not sort after %q", i, id, prev)
		}
		prev = id
	}
	// The clock going back must not break the order.
	if id := g.New("job", now.Add(-time.Hour)); id <= prev {
		t.Fatalf("id after a clock step back %q sorts before %q", id, prev)
	}
	for _, bad := range []string{"", "job_", "job_01M81FYDCTE1X91SVCMDMS18K", "job_01M81FYDCTE1X91SVCMDMS18KU", "run_01M81FYDCTE1X91SVCMDMS18K4", "job_81M81FYDCTE1X91SVCMDMS18K4", "job_../../etc/passwd......."} {
		if ValidID("job", bad) {
			t.Errorf("ValidID(%q) = true, want false", bad)
		}
	}
}

func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "0", "42", "-1", "9223372036854775808", "abc", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseCursor(s)
		if err == nil && (n < 0 || (s != "" && FormatCursor(n) != s && "0"+FormatCursor(n) != s && len(s) < 2)) {
			t.Fatalf("ParseCursor(%q) = %d without error", s, n)
		}
		if err != nil && ErrorCode(err) != ECURSOR {
			t.Fatalf("ParseCursor(%q) error code = %s, want invalid_cursor", s, ErrorCode(err))
		}
	})
}

// TestFloorID: ids made before t sort below FloorID(t), ids made at or after
// it do not, and FloorID is a valid id (a cursor may hold it).
func TestFloorID(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var g IDGenerator
	before, at := g.New("job", t0.Add(-time.Millisecond)), g.New("job", t0.Add(time.Millisecond))
	floor := FloorID("job", t0)
	if !(before < floor) || !(floor < at) {
		t.Errorf("FloorID = %s; want between %s and %s", floor, before, at)
	}
	if !ValidID("job", floor) {
		t.Errorf("FloorID %s is not a valid id", floor)
	}
}
