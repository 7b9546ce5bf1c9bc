package httpapi

import (
	"net/http"
	"testing"
	"time"
)

func TestParsePrefer(t *testing.T) {
	tests := []struct {
		header []string
		async  bool
		wait   time.Duration
	}{
		{nil, false, -1},
		{[]string{"wait=5"}, false, 5 * time.Second},
		{[]string{"respond-async"}, true, -1},
		{[]string{"respond-async, wait=10"}, true, 10 * time.Second},
		{[]string{"handling=lenient", "wait=0.5"}, false, 500 * time.Millisecond},
		{[]string{`wait="3"`}, false, 3 * time.Second},
		{[]string{"WAIT=2; foo=bar"}, false, 2 * time.Second},
		{[]string{"wait=-1"}, false, -1},
		{[]string{"wait=abc"}, false, -1},
		{[]string{"wait=1e99"}, false, -1},
	}
	for _, tt := range tests {
		h := http.Header{"Prefer": tt.header}
		got := parsePrefer(h)
		if got.async != tt.async || got.wait != tt.wait {
			t.Errorf("parsePrefer(%q) = %+v, want async=%v wait=%v", tt.header, got, tt.async, tt.wait)
		}
	}
}

func TestWaitFor(t *testing.T) {
	limit := 60 * time.Second
	if got := (preference{wait: -1}).waitFor(2*time.Second, limit); got != 2*time.Second {
		t.Errorf("no header: waitFor = %v, want the operation default 2s", got)
	}
	if got := (preference{wait: 0}).waitFor(2*time.Second, limit); got != 0 {
		t.Errorf("wait=0: waitFor = %v, want 0", got)
	}
	if got := (preference{async: true, wait: 5 * time.Second}).waitFor(2*time.Second, limit); got != 0 {
		t.Errorf("respond-async: waitFor = %v, want 0", got)
	}
	if got := (preference{wait: time.Hour}).waitFor(0, limit); got != limit {
		t.Errorf("wait=3600: waitFor = %v, want the cap %v", got, limit)
	}
}

func FuzzParsePrefer(f *testing.F) {
	for _, s := range []string{"wait=5", "respond-async, wait=10", `wait="3"`, "wait=1e308", ";;,,=", "wait=NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := parsePrefer(http.Header{"Prefer": {s}})
		if p.wait < -1 || p.wait > 1e6*time.Second {
			t.Fatalf("parsePrefer(%q).wait = %v out of range", s, p.wait)
		}
	})
}
