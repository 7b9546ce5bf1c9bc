package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand/worker"
	"github.com/nats-io/nats.go"
)

// natsBridgeConfig is testConfig with channels and one NATS bridge.
func natsBridgeConfig(name, url, routes string) string {
	return testConfig + `channels:
  "orders.*": { history: 1h }
  sensors.all: { history: 1h }
  ticks: { history: 1h }
bridges:
  - name: ` + name + `
    url: "` + url + `"
` + routes
}

// TestBridgeNATS: the npm nats client on the far side. Out: a channel event
// published over HTTP arrives with its id, type and data (and Nats-Msg-Id);
// an operation's job events arrive on their topic in order. In: a message
// lands in the channel's history, its redelivery (same Nats-Msg-Id) does
// not, a text payload is kept as text. Request/reply: a NATS request submits
// a job and gets its terminal event with the result; an invalid one gets the
// problem.
func TestBridgeNATS(t *testing.T) {
	t.Parallel()
	needBroker(t, "NATS", natsAddr)
	p := unique("t")
	s := startServer(t, natsBridgeConfig("n1", "nats://"+natsAddr, `    publish:
      - events: ["channel:orders.*"]
        to: "`+p+`.out.{channel}"
      - events: ["operation:echo"]
        to: "`+p+`.jobs.{operation}.{type}"
    subscribe:
      - from: "`+p+`.in.>"
        to: "channel:sensors.all"
      - from: "`+p+`.rpc"
        to: "jobs:hybrid"
      - from: "`+p+`.rpc-report"
        to: "jobs:generate-report"
`))
	waitBridgeUp(t, s, "n1")
	out := lines(t, node(t, "nats-client.mjs", "sub", p+".out.>", "1"))
	jobs := lines(t, node(t, "nats-client.mjs", "sub", p+".jobs.>", "3"))
	waitClient(t, out)
	waitClient(t, jobs)
	runWorker(t, s, "echo", func(ctx context.Context, j *worker.Job) (any, error) { return json.RawMessage(j.Input), nil })
	runWorker(t, s, "hybrid", func(ctx context.Context, j *worker.Job) (any, error) {
		return map[string]any{"echo": json.RawMessage(j.Input)}, nil
	})

	_, _, b := s.do("POST", "/v1/channels/orders.eu/events", `{"type":"order.created","data":{"n":1}}`)
	var pub struct{ ID string }
	mustJSON(t, b, &pub)
	got := received(t, out, 20*time.Second)
	m := got[0]
	d := m["data"].(map[string]any)
	h := m["headers"].(map[string]any)
	if m["subject"] != p+".out.orders.eu" || d["id"] != pub.ID || d["type"] != "order.created" || fmt.Sprint(d["data"]) != "map[n:1]" ||
		h["Nats-Msg-Id"] != pub.ID || h["Errand-Type"] != "order.created" || h["Errand-Stream"] != "orders.eu" {
		t.Fatalf("the channel event over NATS = %v, want id %s on %s.out.orders.eu", m, pub.ID, p)
	}
	j := submit(t, s, "echo", map[string]int{"x": 1})
	var types []string
	for _, m := range received(t, jobs, 20*time.Second) {
		d := m["data"].(map[string]any)
		if d["stream"] != j.ID || !strings.HasSuffix(m["subject"].(string), "."+d["type"].(string)) {
			t.Fatalf("job event %v, want one of job %s on its type's subject", m, j.ID)
		}
		types = append(types, d["type"].(string))
	}
	if strings.Join(types, " ") != "job.created job.started job.succeeded" {
		t.Fatalf("job events over NATS: %v, want created, started, succeeded in order", types)
	}

	for range 2 { // the second is a redelivery: the same Nats-Msg-Id
		runNode(t, "nats-client.mjs", "pub", p+".in.a", `{"temp":21}`, `{"Nats-Msg-Id":"m-1"}`)
	}
	runNode(t, "nats-client.mjs", "pub", p+".in.b", `not json`)
	evs := waitHistory(t, s, "sensors.all", 2)
	if string(evs[0].Data) != `{"temp":21}` || string(evs[1].Data) != `{"content_type":"text/plain; charset=utf-8","text":"not json"}` {
		t.Fatalf("history of sensors.all: %s, %s", evs[0].Data, evs[1].Data)
	}
	time.Sleep(300 * time.Millisecond)
	if evs := waitHistory(t, s, "sensors.all", 2); len(evs) != 2 {
		t.Fatalf("the redelivered message was appended again: %d events", len(evs))
	}

	reply := received(t, lines(t, node(t, "nats-client.mjs", "request", p+".rpc", `{"w":5}`, "20000")), 25*time.Second)
	d = reply[0]["data"].(map[string]any)
	job := d["data"].(map[string]any)
	if d["type"] != "job.succeeded" || job["operation"] != "hybrid" || fmt.Sprint(job["result"]) != "map[echo:map[w:5]]" {
		t.Fatalf("the reply to a NATS request = %v, want job.succeeded with the result", reply[0])
	}
	bad := received(t, lines(t, node(t, "nats-client.mjs", "request", p+".rpc-report", `{"type":"yearly"}`, "20000")), 25*time.Second)
	if d := bad[0]["data"].(map[string]any); d["code"] != "validation_failed" || bad[0]["headers"].(map[string]any)["Content-Type"] != "application/problem+json" {
		t.Fatalf("the reply to an invalid request = %v, want a validation_failed problem", bad[0])
	}
	st := bridgeStatus(t, s)[0]
	sub := st["subscribe"].([]any)
	if in := sub[0].(map[string]any); in["messages_in"] != 2.0 || in["duplicates"] != 1.0 {
		t.Errorf("status of the subscription: %v, want 2 in, 1 duplicate", in)
	}
	if rep := sub[2].(map[string]any); rep["invalid"] != 1.0 || !strings.Contains(fmt.Sprint(rep["last_invalid"]), "validation_failed") {
		t.Errorf("status of the refusing route: %v, want 1 invalid", rep)
	}
	// /metrics reads the same counters (open in --dev).
	if code, _, body := s.do("GET", "/metrics", ""); code != http.StatusOK ||
		!strings.Contains(string(body), `errand_bridge_messages_total{bridge="n1",direction="in",route="`) ||
		!strings.Contains(string(body), `errand_bridge_up{bridge="n1"} 1`) {
		t.Errorf("/metrics: %d, want the bridge's routes and connection:\n%.2000s", code, body)
	}
}

// runNode runs an npm client to its end.
func runNode(t *testing.T, script string, args ...string) {
	t.Helper()
	if b, err := node(t, script, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, b)
	}
}

// waitBridgeUp waits until a bridge's connection is up.
func waitBridgeUp(t *testing.T, s *server, name string) {
	t.Helper()
	waitBridge(t, s, name, 20*time.Second, func(b map[string]any) bool { return b["state"] == "up" })
}

// waitBridge waits until a bridge's status satisfies ok.
func waitBridge(t *testing.T, s *server, name string, d time.Duration, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	var last map[string]any
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, b := range bridgeStatus(t, s) {
			if b["name"] == name {
				if last = b; ok(b) {
					return b
				}
			}
		}
	}
	t.Fatalf("bridge %s after %s: %v", name, d, last)
	return nil
}

type historyEvent struct {
	ID   string
	Type string
	Data json.RawMessage
}

// waitHistory waits until a channel holds at least n events and returns them.
func waitHistory(t *testing.T, s *server, channel string, n int) []historyEvent {
	t.Helper()
	var page struct{ Events []historyEvent }
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, _, b := s.do("GET", "/v1/channels/"+channel+"/events?after=0&limit=1000", "")
		mustJSON(t, b, &page)
		if len(page.Events) >= n {
			return page.Events
		}
	}
	t.Fatalf("channel %s has %d events after 20s, want %d", channel, len(page.Events), n)
	return nil
}

// routeOut is a publish route's messages_out (0 before any).
func routeOut(b map[string]any, i int) float64 {
	v, _ := b["publish"].([]any)[i].(map[string]any)["messages_out"].(float64)
	return v
}

// TestBridgeNATSFaults: 10,000 events published while the broker is
// unreachable (the connection cut through a loopback proxy) all reach a
// JetStream stream once it is back; errand is killed with SIGKILL in the
// middle of that drain and restarted: none is lost, all in order, each with
// its event id as Nats-Msg-Id (JetStream drops the repeats a restart sends).
func TestBridgeNATSFaults(t *testing.T) {
	t.Parallel()
	needBroker(t, "NATS", natsAddr)
	p := unique("f")
	stream := strings.ToUpper(p)
	runNode(t, "nats-client.mjs", "stream", stream, p+".>")
	px := newProxy(t, natsAddr)
	s := startServer(t, natsBridgeConfig("nf", "nats://"+px.Addr, `    batch: 50
    publish:
      - events: ["channel:ticks"]
        to: "`+p+`.ticks"
`))
	waitBridgeUp(t, s, "nf")
	px.Cut()
	waitBridge(t, s, "nf", 20*time.Second, func(b map[string]any) bool { return b["state"] != "up" })
	_, _, body := s.do("GET", "/readyz", "")
	if !strings.Contains(string(body), `"bridges_down"`) || !strings.Contains(string(body), `"nf"`) {
		t.Errorf("/readyz with the broker away = %s, want ready with the bridge named down", body)
	}
	ids := publishN(t, s, "ticks", 10000)
	px.Restore()
	b := waitBridge(t, s, "nf", 60*time.Second, func(b map[string]any) bool { return routeOut(b, 0) >= 1000 })
	s.kill()
	t.Logf("killed with %v of 10000 published", routeOut(b, 0))
	s.start()
	waitBridge(t, s, "nf", 120*time.Second, func(b map[string]any) bool {
		lag, _ := b["publish"].([]any)[0].(map[string]any)["lag"].(float64)
		return b["state"] == "up" && lag == 0 && routeOut(b, 0) > 0
	})
	got := received(t, lines(t, node(t, "nats-client.mjs", "sub", p+".ticks", "10000", stream)), 60*time.Second)
	dups := checkOnceInOrder(t, ids, got, func(m map[string]any) string {
		return fmt.Sprint(m["headers"].(map[string]any)["Nats-Msg-Id"])
	})
	if dups != 0 {
		t.Fatalf("JetStream holds %d repeats (Nats-Msg-Id should have dropped them)", dups)
	}
}

// TestBridgeNATSTwoNodes: two errand nodes on PostgreSQL with one publish
// route publish each event once; when the route's leader is killed, the
// other takes the route over and carries on from the cursor: every event
// arrives, repeats only of what the dead leader had not yet recorded, each
// with its event id.
func TestBridgeNATSTwoNodes(t *testing.T) {
	t.Parallel()
	needBroker(t, "NATS", natsAddr)
	p := unique("m")
	store := "ERRAND_STORE=" + pgURL(t)
	cfg := natsBridgeConfig("nm", "nats://"+natsAddr, `    publish:
      - events: ["channel:ticks"]
        to: "`+p+`.ticks"
`)
	nc, err := nats.Connect(natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	var got []map[string]any
	sub, err := nc.Subscribe(p+".ticks", func(m *nats.Msg) {
		var ev map[string]any
		json.Unmarshal(m.Data, &ev)
		mu.Lock()
		got = append(got, map[string]any{"data": ev, "id": m.Header.Get("Nats-Msg-Id")})
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nodes := []*server{startServerEnv(t, cfg, false, store), startServerEnv(t, cfg, false, store)}
	leader := -1
	for deadline := time.Now().Add(20 * time.Second); leader < 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for i, n := range nodes {
			if r := bridgeStatus(t, n)[0]["publish"].([]any)[0].(map[string]any)["role"]; r == "leader" {
				leader = i
			}
		}
	}
	if leader < 0 {
		t.Fatal("no node leads the route after 20s")
	}
	other := nodes[1-leader]
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	ids := append(publishN(t, nodes[0], "ticks", 300), publishN(t, nodes[1], "ticks", 300)...)
	waitCount(t, count, 600)
	time.Sleep(300 * time.Millisecond)
	if n := count(); n != 600 {
		t.Fatalf("two nodes published %d messages for 600 events, want each once", n)
	}
	if r := bridgeStatus(t, other)[0]["publish"].([]any)[0].(map[string]any)["role"]; r != "standby" {
		t.Fatalf("the other node's role = %v, want standby", r)
	}
	more := publishN(t, other, "ticks", 200)
	nodes[leader].kill()
	more = append(more, publishN(t, other, "ticks", 300)...)
	waitBridge(t, other, "nm", 30*time.Second, func(b map[string]any) bool {
		return b["publish"].([]any)[0].(map[string]any)["role"] == "leader"
	})
	waitCount(t, count, 1100)
	mu.Lock()
	defer mu.Unlock()
	dups := checkOnceInOrder(t, append(ids, more...), got, func(m map[string]any) string { return m["id"].(string) })
	t.Logf("%d repeats after the takeover", dups)
}

func waitCount(t *testing.T, count func() int, n int) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); count() < n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages after 60s", count(), n)
		}
	}
}
