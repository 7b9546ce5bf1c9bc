package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/errandhq/errand/worker"
)

// amqpBridge is a bridge's routes over AMQP: topic exchange ex, queues with
// prefix p.
func amqpBridge(name, url, ex, p, extra string) string {
	return natsBridgeConfig(name, url, extra+`    publish:
      - events: ["channel:orders.*"]
        to: "`+ex+`/out.{channel}"
      - events: ["channel:ticks"]
        to: "`+ex+`/ticks"
    subscribe:
      - from: "`+p+`-in"
        to: "channel:sensors.all"
      - from: "`+p+`-rpc"
        to: "jobs:hybrid"
`)
}

// TestBridgeAMQP: npm amqplib on the far side of RabbitMQ. Out: a channel
// event arrives with its id as message-id, its type and data. In: a message
// lands in the channel's history; its redelivery (same message-id) does
// not. Request/reply: a message with reply_to and correlation_id submits a
// job and gets its terminal event on the reply queue, the correlation copied.
func TestBridgeAMQP(t *testing.T) {
	t.Parallel()
	needBroker(t, "RabbitMQ", amqpAddr)
	p := unique("t")
	ex := p + "-ex"
	runNode(t, "amqp-client.mjs", "setup", ex, p+"-out", "out.#")
	runNode(t, "amqp-client.mjs", "queue", p+"-in")
	runNode(t, "amqp-client.mjs", "queue", p+"-rpc")
	s := startServer(t, amqpBridge("a1", "amqp://guest:guest@"+amqpAddr, ex, p, ""))
	waitBridgeUp(t, s, "a1")
	runWorker(t, s, "hybrid", func(ctx context.Context, j *worker.Job) (any, error) {
		return map[string]any{"echo": json.RawMessage(j.Input)}, nil
	})
	_, _, b := s.do("POST", "/v1/channels/orders.eu/events", `{"type":"order.created","data":{"n":1}}`)
	var pub struct{ ID string }
	mustJSON(t, b, &pub)
	m := received(t, lines(t, node(t, "amqp-client.mjs", "sub", p+"-out", "1")), 20*time.Second)[0]
	d := m["data"].(map[string]any)
	if m["routingKey"] != "out.orders.eu" || m["exchange"] != ex || d["id"] != pub.ID || m["messageId"] != pub.ID ||
		m["type"] != "order.created" || fmt.Sprint(d["data"]) != "map[n:1]" || m["headers"].(map[string]any)["errand-stream"] != "orders.eu" {
		t.Fatalf("the channel event over AMQP = %v, want id %s on out.orders.eu", m, pub.ID)
	}

	for range 2 {
		runNode(t, "amqp-client.mjs", "pub", "", p+"-in", `{"temp":21}`, `{"messageId":"m-1","contentType":"application/json"}`)
	}
	runNode(t, "amqp-client.mjs", "pub", "", p+"-in", `raw bytes`, `{"contentType":"text/plain"}`)
	evs := waitHistory(t, s, "sensors.all", 2)
	time.Sleep(300 * time.Millisecond)
	if evs = waitHistory(t, s, "sensors.all", 2); len(evs) != 2 || string(evs[0].Data) != `{"temp":21}` ||
		string(evs[1].Data) != `{"content_type":"text/plain","text":"raw bytes"}` {
		t.Fatalf("history of sensors.all = %v, want temp 21 once, then the text", evs)
	}

	reply := received(t, lines(t, node(t, "amqp-client.mjs", "request", p+"-rpc", `{"w":5}`, "20000")), 25*time.Second)[0]
	d = reply["data"].(map[string]any)
	job, _ := d["data"].(map[string]any)
	if d["type"] != "job.succeeded" || fmt.Sprint(job["result"]) != "map[echo:map[w:5]]" || reply["correlationId"] != "corr-7" {
		t.Fatalf("the reply over AMQP = %v, want job.succeeded with the result and correlation_id corr-7", reply)
	}
}

// TestBridgeAMQPFaults: 10,000 events published while RabbitMQ is
// unreachable (a cut loopback proxy) all reach the queue once it is back,
// in order; errand is killed with SIGKILL mid-drain and restarted: none is
// lost, every repeat with its event id as message-id.
func TestBridgeAMQPFaults(t *testing.T) {
	t.Parallel()
	needBroker(t, "RabbitMQ", amqpAddr)
	p := unique("f")
	ex := p + "-ex"
	runNode(t, "amqp-client.mjs", "setup", ex, p+"-ticks", "ticks")
	runNode(t, "amqp-client.mjs", "queue", p+"-in")
	runNode(t, "amqp-client.mjs", "queue", p+"-rpc")
	px := newProxy(t, amqpAddr)
	s := startServer(t, amqpBridge("af", "amqp://guest:guest@"+px.Addr, ex, p, "    batch: 50\n"))
	waitBridgeUp(t, s, "af")
	px.Cut()
	waitBridge(t, s, "af", 30*time.Second, func(b map[string]any) bool { return b["state"] != "up" })
	ids := publishN(t, s, "ticks", 10000)
	px.Restore()
	b := waitBridge(t, s, "af", 60*time.Second, func(b map[string]any) bool { return routeOut(b, 1) >= 1000 })
	s.kill()
	t.Logf("killed with %v of 10000 published", routeOut(b, 1))
	s.start()
	got := received(t, lines(t, node(t, "amqp-client.mjs", "sub", p+"-ticks", "10000", "1500")), 120*time.Second)
	dups := checkOnceInOrder(t, ids, got, func(m map[string]any) string { return fmt.Sprint(m["messageId"]) })
	t.Logf("%d repeats after the restart", dups)
}
