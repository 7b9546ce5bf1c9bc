package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/worker"
	"github.com/twmb/franz-go/pkg/kfake"
)

// kafkaCluster is an in-process Kafka (franz-go's kfake: the real wire
// protocol) with topics of three partitions, for one test.
func kafkaCluster(t *testing.T, topics ...string) string {
	t.Helper()
	addr, _ := kafkaBehind(t, nil, topics...)
	return addr
}

// kafkaBehind is an in-process cluster whose only broker clients reach
// through a loopback proxy (px), which the test can cut: the broker
// advertises the proxy's address (its listener says it is there), so every
// connection, not only the first, goes through it. A nil px makes none.
func kafkaBehind(t *testing.T, px **proxy, topics ...string) (string, *proxy) {
	t.Helper()
	var p *proxy
	listen := func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil || px == nil {
			return ln, err
		}
		p = newProxy(t, ln.Addr().String())
		*px = p
		return advertised{ln, p.ln.Addr()}, nil
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...), kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(3), kfake.ListenFn(listen))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ","), p
}

// advertised is a listener that reports another address as its own.
type advertised struct {
	net.Listener
	addr net.Addr
}

func (a advertised) Addr() net.Addr { return a.addr }

// kafkaNode runs the npm kafkajs client against brokers.
func kafkaNode(t *testing.T, brokers string, args ...string) *exec.Cmd {
	cmd := node(t, "kafka-client.mjs", args...)
	cmd.Env = append(cmd.Environ(), "KAFKA_BROKERS="+brokers)
	return cmd
}

func kafkaBridge(name, brokers, p, extra string) string {
	return natsBridgeConfig(name, "kafka://"+brokers, extra+`    publish:
      - events: ["channel:orders.*"]
        to: "`+p+`-out"
      - events: ["operation:echo"]
        to: "`+p+`-jobs"
      - events: ["channel:ticks"]
        to: "`+p+`-ticks"
    subscribe:
      - from: "`+p+`-in"
        to: "channel:sensors.all"
      - from: "`+p+`-rpc"
        to: "jobs:hybrid"
`)
}

// TestBridgeKafka: npm kafkajs on the far side of an in-process cluster.
// Out: a channel event arrives with its id as key and errand-id header; the
// job events of an operation reach their topic in order (one partition: a
// stream's events are partitioned by stream). In: a record lands in the
// channel's history; its redelivery (same message-id header) does not.
// Request/reply: a record with a reply-topic header submits a job and gets
// its terminal event on that topic, the correlation-id copied.
func TestBridgeKafka(t *testing.T) {
	t.Parallel()
	p := unique("t")
	brokers := kafkaCluster(t, p+"-out", p+"-jobs", p+"-ticks", p+"-in", p+"-rpc", p+"-rpc-reply")
	s := startServer(t, kafkaBridge("k1", brokers, p, ""))
	waitBridgeUp(t, s, "k1")
	runWorker(t, s, "echo", func(ctx context.Context, j *worker.Job) (any, error) { return json.RawMessage(j.Input), nil })
	runWorker(t, s, "hybrid", func(ctx context.Context, j *worker.Job) (any, error) {
		return map[string]any{"echo": json.RawMessage(j.Input)}, nil
	})
	_, _, b := s.do("POST", "/v1/channels/orders.eu/events", `{"type":"order.created","data":{"n":1}}`)
	var pub struct{ ID string }
	mustJSON(t, b, &pub)
	m := received(t, lines(t, kafkaNode(t, brokers, "sub", p+"-out", "1")), 30*time.Second)[0]
	d := m["data"].(map[string]any)
	h := m["headers"].(map[string]any)
	if m["key"] != pub.ID || d["id"] != pub.ID || h["errand-id"] != pub.ID || h["errand-type"] != "order.created" ||
		h["errand-stream"] != "orders.eu" || fmt.Sprint(d["data"]) != "map[n:1]" {
		t.Fatalf("the channel event over Kafka = %v, want id %s", m, pub.ID)
	}
	j := submit(t, s, "echo", map[string]int{"x": 1})
	var types []string
	part := -1.0
	for _, m := range received(t, lines(t, kafkaNode(t, brokers, "sub", p+"-jobs", "3")), 30*time.Second) {
		d := m["data"].(map[string]any)
		if d["stream"] != j.ID || (part >= 0 && m["partition"] != part) {
			t.Fatalf("job event %v, want job %s's, all in one partition", m, j.ID)
		}
		part = m["partition"].(float64)
		types = append(types, d["type"].(string))
	}
	if strings.Join(types, " ") != "job.created job.started job.succeeded" {
		t.Fatalf("job events over Kafka: %v, want created, started, succeeded in order", types)
	}

	for range 2 {
		runKafka(t, brokers, "pub", p+"-in", `{"temp":21}`, `{"message-id":"m-1"}`)
	}
	runKafka(t, brokers, "pub", p+"-in", `{"temp":22}`)
	evs := waitHistory(t, s, "sensors.all", 2)
	time.Sleep(300 * time.Millisecond)
	if evs = waitHistory(t, s, "sensors.all", 2); len(evs) != 2 || string(evs[0].Data) != `{"temp":21}` || string(evs[1].Data) != `{"temp":22}` {
		t.Fatalf("history of sensors.all = %v, want temp 21 once, then 22", evs)
	}

	reply := received(t, lines(t, kafkaNode(t, brokers, "request", p+"-rpc", `{"w":5}`, "30000")), 40*time.Second)[0]
	d = reply["data"].(map[string]any)
	job, _ := d["data"].(map[string]any)
	if d["type"] != "job.succeeded" || fmt.Sprint(job["result"]) != "map[echo:map[w:5]]" ||
		reply["headers"].(map[string]any)["correlation-id"] != "corr-9" {
		t.Fatalf("the reply over Kafka = %v, want job.succeeded with the result and correlation-id corr-9", reply)
	}
}

func runKafka(t *testing.T, brokers string, args ...string) {
	t.Helper()
	if b, err := kafkaNode(t, brokers, args...).CombinedOutput(); err != nil {
		t.Fatalf("kafka-client %v: %v\n%s", args, err, b)
	}
}

// TestBridgeKafkaFaults: 10,000 events published while the cluster is
// unreachable (a cut loopback proxy in front of it) all reach the topic once
// it is back, in order; errand is killed with SIGKILL mid-drain and
// restarted: none is lost, every repeat with its event id as key.
func TestBridgeKafkaFaults(t *testing.T) {
	t.Parallel()
	p := unique("f")
	var px *proxy
	brokers, _ := kafkaBehind(t, &px, p+"-out", p+"-jobs", p+"-ticks", p+"-in", p+"-rpc")
	s := startServer(t, kafkaBridge("kf", brokers, p, "    batch: 50\n"))
	waitBridgeUp(t, s, "kf")
	px.Cut()
	waitBridge(t, s, "kf", 30*time.Second, func(b map[string]any) bool { return b["state"] != "up" })
	ids := publishN(t, s, "ticks", 10000)
	px.Restore()
	b := waitBridge(t, s, "kf", 60*time.Second, func(b map[string]any) bool { return routeOut(b, 2) >= 1000 })
	s.kill()
	t.Logf("killed with %v of 10000 published", routeOut(b, 2))
	s.start()
	got := received(t, lines(t, kafkaNode(t, brokers, "sub", p+"-ticks", "10000", "2000")), 120*time.Second)
	dups := checkOnceInOrder(t, ids, got, func(m map[string]any) string { return fmt.Sprint(m["key"]) })
	t.Logf("%d repeats after the restart", dups)
}
