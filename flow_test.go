package errand

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{
		"100/s": {100, time.Second}, "5/m": {5, time.Minute}, "1000/h": {1000, time.Hour}, "10/2s": {10, 2 * time.Second},
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, in := range []string{"0/s", "-1/s", "5", "5/", "5/parsec", "5/-1s", "x/s", ""} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = nil error", in)
		}
	}
	if r, _ := ParseRate("5/s"); r.Interval() != 200*time.Millisecond || r.PerSecond() != 5 {
		t.Errorf("5/s: interval %v, per second %v", r.Interval(), r.PerSecond())
	}
}

func TestFlowKeyValue(t *testing.T) {
	p := &Principal{ID: "key_1", Tenant: "acme"}
	input := json.RawMessage(`{"customer_id":"c-7","n":42,"a/b":{"~x":[true,{"deep":null}]},"list":["x","y"]}`)
	header := func(name string) string {
		if name == "X-Client-Id" {
			return "cli-9"
		}
		return ""
	}
	for spec, want := range map[string]string{
		"principal": "key_1", "tenant": "acme", "global": "",
		"input:/customer_id": "c-7", "input:/n": "42", "input:/a~1b/~0x/0": "true",
		"input:/a~1b/~0x/1/deep": "", "input:/list/1": "y", "input:/list/01": "", "input:/missing": "",
		"input:/list": `["x","y"]`, "header:x-client-id": "cli-9", "header:X-Other": "",
	} {
		k, err := ParseFlowKey(spec)
		if err != nil {
			t.Fatalf("ParseFlowKey(%q): %v", spec, err)
		}
		if got := k.Value(KeySource{Principal: p, Input: input, Header: header}); got != want {
			t.Errorf("%s: value %q, want %q", spec, got, want)
		}
	}
	for _, bad := range []string{"", "user", "input:", "input:x", "input:/a~2", "header:", "header:a b", "tenant:acme"} {
		if _, err := ParseFlowKey(bad); err == nil {
			t.Errorf("ParseFlowKey(%q) = nil error", bad)
		}
	}
	if k, _ := ParseFlowKey("header:x-client-id"); k.String() != "header:X-Client-Id" {
		t.Errorf("header key String() = %q", k.String())
	}
}
