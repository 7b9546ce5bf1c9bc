package bridge

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct{ raw, want, hosts, err string }{
		{"nats://127.0.0.1", "nats://127.0.0.1:4222", "127.0.0.1:4222", ""},
		{"amqps://u:p%40ss@rabbit/my%2Fvhost", "amqps://u@rabbit:5671/my%2Fvhost", "rabbit:5671", ""},
		{"kafka://a:9092,b", "kafka://a:9092,b:9092", "a:9092 b:9092", ""},
		{"mqtt://[::1]:1884", "mqtt://[::1]:1884", "[::1]:1884", ""},
		{"redis://x", "", "", "not a broker URL"},
		{"amqp://a,b", "", "", "takes one host"},
		{"nats://x?y=1", "", "", "not in the URL's query"},
		{"mqtt://h:port", "", "", "not host:port"},
	} {
		ep, err := ParseURL(c.raw)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseURL(%q) error = %v, want %q", c.raw, err, c.err)
			}
			continue
		}
		if err != nil || ep.String() != c.want || strings.Join(ep.Hosts, " ") != c.hosts {
			t.Errorf("ParseURL(%q) = %v (%v), want %s", c.raw, ep, err, c.want)
		}
	}
	if ep, _ := ParseURL("amqps://u:p%40ss@rabbit/v"); ep.Password != "p@ss" || !ep.TLS || ep.Path != "v" {
		t.Errorf("amqps user info: %+v", ep)
	}
	if got := redactURL("amqp://u:secret@h/v"); got != "amqp://u:xxxxx@h/v" {
		t.Errorf("redactURL = %q", got)
	}
}

func TestTemplate(t *testing.T) {
	tm, err := ParseTemplate("shop/{channel}/{type}")
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{"channel": "orders.eu", "type": "order.created"}
	if got := tm.Render(func(n string) string { return vals[n] }); got != "shop/orders.eu/order.created" {
		t.Errorf("Render = %q", got)
	}
	for _, bad := range []string{"a/{tenant}", "a/{channel", "a}b", "", "{}"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q) = nil error", bad)
		}
	}
	if cleanValue(Kafka, "a:b/c") != "a_b_c" || cleanValue(NATS, "a:b") != "a:b" {
		t.Errorf("cleanValue")
	}
}

func TestPayloadJSON(t *testing.T) {
	for _, c := range []struct{ payload, ct, want string }{
		{`{"a":1}`, "", `{"a":1}`},
		{`{"a":1}`, "application/cloudevents+json", `{"a":1}`},
		{`123`, "text/plain", `{"content_type":"text/plain","text":"123"}`},
		{`not json`, "", `{"content_type":"text/plain; charset=utf-8","text":"not json"}`},
		{"\x00\xff", "", `{"content_type":"application/octet-stream","base64":"AP8="}`},
		{`{"a":1,"a":2}`, "", `{"content_type":"text/plain; charset=utf-8","text":"{\"a\":1,\"a\":2}"}`},
	} {
		if got := string(payloadJSON([]byte(c.payload), c.ct)); got != c.want {
			t.Errorf("payloadJSON(%q, %q) = %s, want %s", c.payload, c.ct, got, c.want)
		}
	}
}

func TestCheck(t *testing.T) {
	d := Declared{Channel: func(n string) bool { return n == "orders.eu" }, Operation: func(n string) bool { return n == "resize" }}
	c := Config{Name: "b", URL: "nats://h", Publish: []Publish{{Events: []string{"job.*"}, To: "x.{operation}.{channel}"}},
		Subscribe: []Subscribe{{From: "a.>", To: "channel:orders.eu"}, {From: "a.b.>.c", To: "jobs:crop"}}}
	var got []string
	for _, p := range c.Check(d) {
		got = append(got, strings.Join(p.Path, ".")+": "+p.Message)
	}
	want := []string{"publish.0.to: {channel} is empty", "subscribe.1.from: a NATS subject", "subscribe.1.to: operation \"crop\""}
	if len(got) != len(want) {
		t.Fatalf("Check = %q, want %d problems", got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %q, want %q…", i, got[i], want[i])
		}
	}
}
