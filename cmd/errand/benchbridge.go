package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/bench"
	"github.com/errandhq/errand/bridge"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
)

// bridgeFigures are what bench bridge reports.
type bridgeFigures struct {
	Broker string `json:"broker"`
	// ClientPerSec is the broker client's own confirmed publish rate (the
	// adapter errand uses, batches of 256, no errand in the way).
	ClientPerSec float64 `json:"client_confirmed_per_second"`
	// PlainPerSec is errand's durable channel publish rate over HTTP without
	// bridges; PublishPerSec the same with a publish route on the channel.
	PlainPerSec   float64 `json:"errand_publish_per_second"`
	PublishPerSec float64 `json:"errand_publish_with_bridge_per_second"`
	// BridgePerSec is events/s from errand to the broker, confirmed and
	// received: published events over the time until the last arrived.
	BridgePerSec float64 `json:"bridge_out_per_second"`
	// VsClient and VsPlain are BridgePerSec over ClientPerSec and PlainPerSec.
	VsClient float64 `json:"bridge_vs_client"`
	VsPlain  float64 `json:"bridge_vs_errand_publish"`
	// P50ms and P99ms are publish (the event's time) → received from the broker.
	P50ms float64 `json:"publish_to_broker_p50_ms"`
	P99ms float64 `json:"publish_to_broker_p99_ms"`
	// InPerSec is broker → channel messages/s (committed, acknowledged).
	InPerSec float64 `json:"broker_to_channel_per_second"`
	Events   int     `json:"events"`
}

func newBenchBridgeCmd(stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	var broker, url string
	var messages int
	p := "bench-" + randHex()
	cmd := &cobra.Command{
		Use:   "bridge",
		Short: "Broker bridges: events/s errand → broker against the client's own confirmed rate and errand's publish rate, publish→broker p50/p99, broker → channel messages/s",
		Args:  cobra.NoArgs,
	}
	var cluster *kfake.Cluster
	cmd.RunE = o.runWith(stdout, stderr, func() string {
		if url == "" {
			url = defaultBrokerURL(broker, &cluster)
		}
		to := p + "-out"
		if broker == bridge.AMQP {
			to = "/" + to
		}
		return fmt.Sprintf(`bridges:
  - name: bench
    url: %q
    client_id: %s-errand
    publish:
      - events: ["channel:bench.out"]
        to: %q
    subscribe:
      - from: %q
        to: "channel:bench.in"
`, url, p, to, p+"-in")
	}, func(ctx context.Context, target string, facts map[string]any) (any, error) {
		if cluster != nil {
			defer cluster.Close()
		}
		facts["broker_url"] = url
		return benchBridge(ctx, broker, url, p, target, &o, messages)
	})
	o.flags(cmd)
	cmd.Flags().StringVar(&broker, "broker", "nats", "nats, amqp, mqtt or kafka")
	cmd.Flags().StringVar(&url, "url", "", "the broker (default: the machine's NATS, RabbitMQ or Mosquitto; Kafka in-process, kfake)")
	cmd.Flags().IntVar(&messages, "messages", 20000, "messages for the client's own rate and for broker → channel")
	return cmd
}

func randHex() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func defaultBrokerURL(broker string, cluster **kfake.Cluster) string {
	switch broker {
	case bridge.AMQP:
		return "amqp://guest:guest@127.0.0.1:5672"
	case bridge.MQTT:
		return "mqtt://127.0.0.1:1883"
	case bridge.Kafka:
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
		if err != nil {
			return "kafka://127.0.0.1:9092"
		}
		*cluster = c
		return "kafka://" + strings.Join(c.ListenAddrs(), ",")
	}
	return "nats://127.0.0.1:4222"
}

// benchBridge measures one broker; p prefixes its topics, queues or subjects.
func benchBridge(ctx context.Context, broker, url, p, target string, o *benchOptions, messages int) (*bridgeFigures, error) {
	cfg := &bridge.Config{Name: "bench-client", URL: url, Options: bridge.Options{ClientID: p + "-client", QoS: 1,
		SessionExpiry: time.Minute}}
	ep, err := bridge.ParseURL(url)
	if err != nil {
		return nil, err
	}
	if err := prepareBroker(ctx, broker, ep, p); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := dialers()[broker].Dial(dctx, cfg, ep)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	defer conn.Close()
	f := &bridgeFigures{Broker: broker}
	if f.ClientPerSec, err = clientRate(ctx, conn, broker, p+"-client", messages); err != nil {
		return nil, err
	}
	load := func(channel string) bench.Result {
		return bench.Run(ctx, bench.Load{Name: channel, URL: target + "/v1/channels/" + channel + "/events",
			Body: []byte(`{"type":"tick","data":{"n":1}}`), Header: http.Header{"Content-Type": {"application/json"}},
			Concurrency: o.concurrency, Duration: o.duration, WantStatus: 202})
	}
	load("bench.warmup") // the store's file and caches grown: the runs after compare fairly
	f.PlainPerSec = load("bench.plain").PerSecond
	if err := f.measureOut(ctx, conn, p, load); err != nil {
		return nil, err
	}
	if f.InPerSec, err = inRate(ctx, conn, broker, p+"-in", target, messages); err != nil {
		return nil, err
	}
	f.VsClient, f.VsPlain = f.BridgePerSec/f.ClientPerSec, f.BridgePerSec/f.PlainPerSec
	return f, nil
}

// prepareBroker makes what the run needs at the broker: AMQP queues, a
// JetStream stream over the NATS subjects (the durable path).
func prepareBroker(ctx context.Context, broker string, ep *bridge.Endpoint, p string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch broker {
	case bridge.AMQP:
		c, err := amqp.Dial("amqp://" + ep.User + ":" + ep.Password + "@" + ep.Hosts[0] + "/")
		if err != nil {
			return err
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			return err
		}
		for _, q := range []string{"-out", "-in", "-client"} {
			if _, err := ch.QueueDeclare(p+q, true, false, false, false, amqp.Table{"x-expires": int32(600000)}); err != nil {
				return err
			}
		}
	case bridge.NATS:
		nc, err := nats.Connect(strings.Join(ep.Hosts, ","))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: strings.ToUpper(strings.ReplaceAll(p, "-", "_")),
			Subjects: []string{p + "-out", p + "-client"}, MaxAge: 10 * time.Minute})
		return err
	}
	return nil
}

// clientRate is the client's own confirmed publish rate: n messages in
// batches of 256, each batch confirmed before the next.
func clientRate(ctx context.Context, conn bridge.Conn, broker, topic string, n int) (float64, error) {
	if broker == bridge.AMQP {
		topic = "/" + topic
	}
	body := []byte(`{"id":"1","stream":"bench.out","type":"tick","time":"2026-01-01T00:00:00Z","data":{"n":1}}`)
	start := time.Now()
	for i := 0; i < n; i += 256 {
		var batch []*bridge.Message
		for j := i; j < min(i+256, n); j++ {
			batch = append(batch, &bridge.Message{Address: topic, ID: fmt.Sprint(j + 1), Type: "tick", Stream: "bench.out",
				Time: time.Now(), Body: body, ContentType: "application/json"})
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := conn.Publish(pctx, batch)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("the client's own publish: %w", err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// measureOut publishes over HTTP to the routed channel while consuming what
// the bridge sends, and measures until the last published event arrived.
func (f *bridgeFigures) measureOut(ctx context.Context, conn bridge.Conn, p string, load func(string) bench.Result) error {
	var mu sync.Mutex
	var lat []time.Duration
	var last time.Time
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go conn.Consume(cctx, &bridge.Subscribe{Name: "bench", From: p + "-out", Group: p + "-consumer"}, func(in *bridge.Inbound) {
		var ev struct{ Time time.Time }
		json.Unmarshal(in.Payload, &ev)
		now := time.Now()
		mu.Lock()
		lat, last = append(lat, now.Sub(ev.Time)), now
		mu.Unlock()
		if in.Ack != nil {
			in.Ack()
		}
	})
	time.Sleep(time.Second) // the consumer is subscribed
	start := time.Now()
	r := load("bench.out")
	f.PublishPerSec, f.Events = r.PerSecond, r.Requests-r.Errors
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= f.Events {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lat) < f.Events {
		return fmt.Errorf("%d of %d events reached the broker's consumer in 2 minutes", len(lat), f.Events)
	}
	f.BridgePerSec = float64(f.Events) / last.Sub(start).Seconds()
	slices.Sort(lat)
	f.P50ms = float64(lat[len(lat)/2].Microseconds()) / 1000
	f.P99ms = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	return nil
}

// inRate publishes n messages to the subscribed topic and measures until
// the bridge has committed them all.
func inRate(ctx context.Context, conn bridge.Conn, broker, topic, target string, n int) (float64, error) {
	if broker == bridge.AMQP {
		topic = "/" + topic
	}
	start := time.Now()
	for i := 0; i < n; i += 256 {
		var batch []*bridge.Message
		for j := i; j < min(i+256, n); j++ {
			batch = append(batch, &bridge.Message{Address: topic, ID: fmt.Sprintf("in-%d", j), Type: "reading", Stream: "s",
				Time: time.Now(), Body: []byte(`{"temp":21}`), ContentType: "application/json"})
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := conn.Publish(pctx, batch)
		cancel()
		if err != nil {
			return 0, err
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(target + "/v1/bridges")
		if err != nil {
			return 0, err
		}
		var st struct {
			Bridges []bridge.Status
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if len(st.Bridges) == 1 && int(st.Bridges[0].Subscribe[0].MessagesIn) >= n {
			return float64(n) / time.Since(start).Seconds(), nil
		}
	}
	return 0, fmt.Errorf("the bridge did not take %d messages in 2 minutes", n)
}
