// Package kafka is the Kafka adapter of errand's broker bridges
// (github.com/twmb/franz-go).
//
// Out: records are produced with acks from every in-sync replica (and
// franz-go's idempotent producer, which keeps a partition's order across
// retries), uncompressed (every client reads them; franz-go's default,
// snappy, is one some lack), asking for a topic that does not exist to be
// made (the broker's auto.create.topics.enable decides); the key is the event id, the headers errand-id, errand-type,
// errand-stream, errand-time and content-type carry the rest. A record's
// partition is chosen by its stream (not its key), so a stream's events stay
// in one partition, in order. In: each route consumes its topic in a
// consumer group (errand's nodes share its partitions), commits offsets only
// after errand committed the records, and de-duplicates by the errand-id or
// message-id header, else by topic/partition/offset. A record with a
// reply-topic header (or Spring's kafka_replyTopic) gets its job's result
// there, with its correlation-id (kafka_correlationId) copied.
package kafka

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/errandhq/errand/bridge"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The headers errand writes and reads.
const (
	HeaderID          = "errand-id"
	HeaderType        = "errand-type"
	HeaderStream      = "errand-stream"
	HeaderTime        = "errand-time"
	HeaderContentType = "content-type"
	HeaderReplyTopic  = "reply-topic"
	HeaderCorrelation = "correlation-id"
)

// Dialer connects to a Kafka cluster.
type Dialer struct{}

var _ bridge.Dialer = Dialer{}

// Dial makes the producing client and checks that a broker answers.
func (Dialer) Dial(ctx context.Context, cfg *bridge.Config, ep *bridge.Endpoint) (bridge.Conn, error) {
	opts, err := options(cfg, ep)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(byStream()),
		kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.AllowAutoTopicCreation())...)
	if err != nil {
		return nil, err
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	c := &conn{cl: cl, cfg: cfg, ep: ep, lost: make(chan struct{}), done: make(chan struct{})}
	go c.watch()
	return c, nil
}

// options are every client's: brokers, client id, TLS, SASL.
func options(cfg *bridge.Config, ep *bridge.Endpoint) ([]kgo.Opt, error) {
	id := cfg.Options.ClientID
	if id == "" {
		id = "errand-" + cfg.Name
	}
	opts := []kgo.Opt{kgo.SeedBrokers(ep.Hosts...), kgo.ClientID(id), kgo.DialTimeout(10 * time.Second)}
	tc, err := cfg.Options.TLS.Config(ep.Hosts[0], ep.TLS)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	u, p := cfg.Credentials(ep)
	switch cfg.Options.SASL {
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: u, Pass: p}.AsMechanism()))
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: u, Pass: p}.AsSha256Mechanism()))
	case "scram-sha-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: u, Pass: p}.AsSha512Mechanism()))
	}
	return opts, nil
}

// byStream partitions a record by its errand-stream header.
func byStream() kgo.Partitioner {
	return kgo.BasicConsistentPartitioner(func(string) func(r *kgo.Record, n int) int {
		return func(r *kgo.Record, n int) int {
			h := fnv.New32a()
			for _, hd := range r.Headers {
				if hd.Key == HeaderStream {
					h.Write(hd.Value)
				}
			}
			return int(h.Sum32() % uint32(n))
		}
	})
}

// conn is the producing client (subscriptions make clients of their own).
type conn struct {
	cl   *kgo.Client
	cfg  *bridge.Config
	ep   *bridge.Endpoint
	once sync.Once
	lost chan struct{}
	done chan struct{}
}

func (c *conn) markLost()             { c.once.Do(func() { close(c.lost) }) }
func (c *conn) Lost() <-chan struct{} { return c.lost }

// Close closes the client.
func (c *conn) Close() error {
	c.markLost()
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	c.cl.Close()
	return nil
}

// watch pings the cluster every 5 s: a cluster that stops answering is a
// lost connection (franz-go reconnects by itself, but errand's status and
// its subscriptions want to know).
func (c *conn) watch() {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.lost:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.cl.Ping(ctx)
		cancel()
		if err != nil {
			c.markLost()
			return
		}
	}
}

// Publish produces the batch and waits for every partition leader's ack.
func (c *conn) Publish(ctx context.Context, msgs []*bridge.Message) error {
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		r := &kgo.Record{Topic: m.Address, Value: m.Body, Headers: []kgo.RecordHeader{
			{Key: HeaderType, Value: []byte(m.Type)}, {Key: HeaderTime, Value: []byte(m.Time.UTC().Format(time.RFC3339Nano))},
			{Key: HeaderContentType, Value: []byte(m.ContentType)}, {Key: HeaderStream, Value: []byte(m.Stream)}}}
		if m.ID != "" {
			r.Key = []byte(m.ID)
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderID, Value: []byte(m.ID)})
		}
		if m.Correlation != nil {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderCorrelation, Value: m.Correlation})
		}
		recs[i] = r
	}
	return c.cl.ProduceSync(ctx, recs...).FirstErr()
}

// Consume consumes the route's topic in its consumer group with a client of
// its own, committing a poll's offsets once errand has committed (Ack) every
// record of it.
func (c *conn) Consume(ctx context.Context, r *bridge.Subscribe, deliver func(*bridge.Inbound)) error {
	opts, err := options(c.cfg, c.ep)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumerGroup(r.Group), kgo.ConsumeTopics(r.From), kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollRecords(ctx, 256)
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-c.lost:
			return fmt.Errorf("the cluster does not answer")
		default:
		}
		if err := fs.Err0(); err != nil && fs.NumRecords() == 0 {
			cl.AllowRebalance()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		recs := fs.Records()
		acked := make(chan struct{}, len(recs))
		for _, rec := range recs {
			in := inbound(rec)
			in.Ack = func() error { acked <- struct{}{}; return nil }
			deliver(in)
		}
		for range recs {
			select {
			case <-acked:
			case <-ctx.Done():
				return nil
			case <-c.lost:
				return fmt.Errorf("the cluster does not answer")
			}
		}
		if len(recs) > 0 {
			if err := cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
				cl.AllowRebalance()
				return fmt.Errorf("commit offsets: %w", err)
			}
		}
		cl.AllowRebalance()
	}
}

func inbound(r *kgo.Record) *bridge.Inbound {
	h := func(keys ...string) string {
		for _, k := range keys {
			for _, hd := range r.Headers {
				if hd.Key == k {
					return string(hd.Value)
				}
			}
		}
		return ""
	}
	in := &bridge.Inbound{Topic: r.Topic, Payload: r.Value, ContentType: h(HeaderContentType, "Content-Type"),
		Type: h(HeaderType, "type"), ID: h(HeaderID, "message-id"), ReplyTo: h(HeaderReplyTopic, "kafka_replyTopic")}
	if in.ID == "" {
		in.ID = fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
	}
	if v := h(HeaderCorrelation, "kafka_correlationId"); v != "" {
		in.Correlation = []byte(v)
	}
	return in
}
