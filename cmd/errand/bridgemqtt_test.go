package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/errandhq/errand/worker"
)

// mqttRoutes is a bridge's routes over MQTT under topic prefix p.
func mqttBridge(name, url, p, extra string) string {
	return natsBridgeConfig(name, url, `    client_id: `+p+`-errand
`+extra+`    publish:
      - events: ["channel:orders.*"]
        to: "`+p+`/out/{channel}"
      - events: ["channel:ticks"]
        to: "`+p+`/ticks"
    subscribe:
      - from: "`+p+`/in/#"
        to: "channel:sensors.all"
      - from: "`+p+`/rpc"
        to: "jobs:hybrid"
`)
}

// TestBridgeMQTT: the npm mqtt client (MQTT 5) on the far side. Out: a
// channel event arrives with its id (user property errand-id), type and
// data. In: a message lands in the channel's history; its redelivery (same
// message-id user property) does not. Request/reply: a message with a
// response topic and correlation data submits a job and gets its terminal
// event there, the correlation copied.
func TestBridgeMQTT(t *testing.T) {
	t.Parallel()
	needBroker(t, "Mosquitto", mqttAddr)
	p := unique("t")
	s := startServer(t, mqttBridge("m1", "mqtt://"+mqttAddr, p, ""))
	waitBridgeUp(t, s, "m1")
	runWorker(t, s, "hybrid", func(ctx context.Context, j *worker.Job) (any, error) {
		return map[string]any{"echo": json.RawMessage(j.Input)}, nil
	})
	out := lines(t, node(t, "mqtt-client.mjs", "sub", p+"/out/#", "1"))
	waitClient(t, out)
	_, _, b := s.do("POST", "/v1/channels/orders.eu/events", `{"type":"order.created","data":{"n":1}}`)
	var pub struct{ ID string }
	mustJSON(t, b, &pub)
	m := received(t, out, 20*time.Second)[0]
	d, up := m["data"].(map[string]any), m["userProperties"].(map[string]any)
	if m["topic"] != p+"/out/orders.eu" || d["id"] != pub.ID || d["type"] != "order.created" || up["errand-id"] != pub.ID ||
		up["errand-type"] != "order.created" || m["contentType"] != "application/json" {
		t.Fatalf("the channel event over MQTT = %v, want id %s on %s/out/orders.eu", m, pub.ID, p)
	}

	for range 2 {
		runNode(t, "mqtt-client.mjs", "pub", p+"/in/a", `{"temp":21}`, `{"userProperties":{"message-id":"m-1"}}`)
	}
	runNode(t, "mqtt-client.mjs", "pub", p+"/in/b", `{"temp":22}`)
	evs := waitHistory(t, s, "sensors.all", 2)
	time.Sleep(300 * time.Millisecond)
	if evs = waitHistory(t, s, "sensors.all", 2); len(evs) != 2 || string(evs[0].Data) != `{"temp":21}` || string(evs[1].Data) != `{"temp":22}` {
		t.Fatalf("history of sensors.all = %v, want temp 21 once, then 22", evs)
	}

	reply := received(t, lines(t, node(t, "mqtt-client.mjs", "request", p+"/rpc", `{"w":5}`, "20000")), 25*time.Second)[0]
	d = reply["data"].(map[string]any)
	job, _ := d["data"].(map[string]any)
	if d["type"] != "job.succeeded" || fmt.Sprint(job["result"]) != "map[echo:map[w:5]]" || reply["correlation"] != "corr-42" {
		t.Fatalf("the reply over MQTT = %v, want job.succeeded with the result and correlation corr-42", reply)
	}
}

// TestBridgeMQTTFaults: 10,000 events published while Mosquitto is
// unreachable (through a loopback proxy, cut) all arrive once it is back, in
// order; errand is killed with SIGKILL in the middle of the drain and
// restarted: none is lost, and every repeat carries its event id.
func TestBridgeMQTTFaults(t *testing.T) {
	t.Parallel()
	needBroker(t, "Mosquitto", mqttAddr)
	p := unique("f")
	px := newProxy(t, mqttAddr)
	s := startServer(t, mqttBridge("mf", "mqtt://"+px.Addr, p, "    batch: 50\n"))
	waitBridgeUp(t, s, "mf")
	sub := lines(t, node(t, "mqtt-client.mjs", "sub", p+"/ticks", "10000", "1500"))
	waitClient(t, sub)
	px.Cut()
	waitBridge(t, s, "mf", 20*time.Second, func(b map[string]any) bool { return b["state"] != "up" })
	ids := publishN(t, s, "ticks", 10000)
	px.Restore()
	b := waitBridge(t, s, "mf", 60*time.Second, func(b map[string]any) bool { return routeOut(b, 1) >= 1000 })
	s.kill()
	t.Logf("killed with %v of 10000 published", routeOut(b, 1))
	s.start()
	got := received(t, sub, 120*time.Second)
	dups := checkOnceInOrder(t, ids, got, func(m map[string]any) string {
		return fmt.Sprint(m["userProperties"].(map[string]any)["errand-id"])
	})
	t.Logf("%d repeats after the restart", dups)
	if dups > 1000 {
		t.Fatalf("%d repeats: more than the batches in flight at the kill", dups)
	}
}
