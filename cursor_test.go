package errand

import "testing"

// TestResumeCursor: Last-Event-ID wins over after; either may be empty (the
// start); a cursor errand did not issue is refused.
func TestResumeCursor(t *testing.T) {
	for _, tt := range []struct {
		last, after string
		want        int64
		ok          bool
	}{
		{"", "", 0, true}, {"7", "3", 7, true}, {" 7 ", "", 7, true}, {"", "3", 3, true},
		{"x", "3", 0, false}, {"", "-1", 0, false},
	} {
		got, err := ResumeCursor(tt.last, tt.after)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ResumeCursor(%q, %q) = %d, %v; want %d (ok %v)", tt.last, tt.after, got, err, tt.want, tt.ok)
		}
	}
}
