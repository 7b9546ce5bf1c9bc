// Package nats is the NATS adapter of errand's broker bridges: core NATS and
// JetStream (github.com/nats-io/nats.go).
//
// Out: a subject that a JetStream stream holds is published to JetStream
// and confirmed by its ack, with the event id as Nats-Msg-Id (JetStream drops
// a repeat within its duplicate window); any other subject is published on
// core NATS and confirmed by a flush (the server has it; core NATS keeps
// nothing for subscribers that are away). In: a route with a stream consumes
// through a durable JetStream consumer, acknowledged after commit; without
// one, a core queue subscription (every errand node in one queue group, so
// each message is taken once), whose messages may carry a reply subject
// (request/reply).
package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/bridge"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The headers errand writes and reads.
const (
	HeaderType        = "Errand-Type"
	HeaderStream      = "Errand-Stream"
	HeaderTime        = "Errand-Time"
	HeaderCorrelation = "Errand-Correlation-Id"
	// HeaderReplyTo is a JetStream message's reply subject (a JetStream
	// message's own reply subject is its acknowledgement's).
	HeaderReplyTo = "Errand-Reply-To"
)

// Dialer connects to NATS.
type Dialer struct{}

var _ bridge.Dialer = Dialer{}

// Dial connects to the servers of the bridge's url.
func (Dialer) Dial(ctx context.Context, cfg *bridge.Config, ep *bridge.Endpoint) (bridge.Conn, error) {
	c := &conn{lost: make(chan struct{}), streams: map[string]streamOf{}}
	opts := []nats.Option{nats.Name(cfg.Options.ClientID), nats.NoReconnect(), nats.Timeout(10 * time.Second),
		nats.ClosedHandler(func(*nats.Conn) { c.markLost() }),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { c.markLost() })}
	if c.name = cfg.Options.ClientID; c.name == "" {
		opts[0] = nats.Name("errand-" + cfg.Name)
	}
	if u, p := cfg.Credentials(ep); u != "" {
		opts = append(opts, nats.UserInfo(u, p))
	}
	tc, err := cfg.Options.TLS.Config(ep.Hosts[0], ep.TLS)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	var urls []string
	scheme := "nats://"
	if tc != nil {
		scheme = "tls://"
	}
	for _, h := range ep.Hosts {
		urls = append(urls, scheme+h)
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() { nc, err := nats.Connect(strings.Join(urls, ","), opts...); done <- result{nc, err} }()
	select {
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		c.nc = r.nc
	}
	if c.js, err = jetstream.New(c.nc); err != nil {
		c.nc.Close()
		return nil, err
	}
	return c, nil
}

// conn is one NATS connection.
type conn struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	name string

	once sync.Once
	lost chan struct{}

	mu      sync.Mutex
	streams map[string]streamOf // subject → the stream that holds it, looked up once a minute
}

type streamOf struct {
	name string // "" for none
	at   time.Time
}

func (c *conn) markLost()             { c.once.Do(func() { close(c.lost) }) }
func (c *conn) Lost() <-chan struct{} { return c.lost }
func (c *conn) Close() error          { c.nc.Close(); c.markLost(); return nil }
func (c *conn) stream(ctx context.Context, subject string) (string, error) {
	c.mu.Lock()
	s, ok := c.streams[subject]
	c.mu.Unlock()
	if ok && time.Since(s.at) < time.Minute {
		return s.name, nil
	}
	name, err := c.js.StreamNameBySubject(ctx, subject)
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		name, err = "", nil
	}
	if err != nil {
		return "", fmt.Errorf("which stream holds %s: %w", subject, err)
	}
	c.mu.Lock()
	if len(c.streams) > 10000 {
		clear(c.streams)
	}
	c.streams[subject] = streamOf{name, time.Now()}
	c.mu.Unlock()
	return name, nil
}

// Publish sends each message to JetStream (its stream's ack) or core NATS
// (a flush), in order, and waits for every confirmation.
func (c *conn) Publish(ctx context.Context, msgs []*bridge.Message) error {
	var acks []jetstream.PubAckFuture
	core := false
	for _, m := range msgs {
		nm := message(m)
		stream, err := c.stream(ctx, m.Address)
		if err != nil {
			return err
		}
		if stream == "" {
			if err := c.nc.PublishMsg(nm); err != nil {
				return err
			}
			core = true
			continue
		}
		opts := []jetstream.PublishOpt{jetstream.WithExpectStream(stream)}
		if m.ID != "" {
			opts = append(opts, jetstream.WithMsgID(m.ID))
		}
		f, err := c.js.PublishMsgAsync(nm, opts...)
		if err != nil {
			return err
		}
		acks = append(acks, f)
	}
	if core {
		if err := c.nc.FlushWithContext(ctx); err != nil {
			return err
		}
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// message is m as a NATS message with errand's headers.
func message(m *bridge.Message) *nats.Msg {
	nm := nats.NewMsg(m.Address)
	nm.Data = m.Body
	if m.ID != "" && !m.Reply {
		nm.Header.Set(jetstream.MsgIDHeader, m.ID)
	}
	nm.Header.Set(HeaderType, m.Type)
	if m.Stream != "" {
		nm.Header.Set(HeaderStream, m.Stream)
	}
	nm.Header.Set(HeaderTime, m.Time.UTC().Format(time.RFC3339Nano))
	nm.Header.Set("Content-Type", m.ContentType)
	if m.Correlation != nil {
		nm.Header.Set(HeaderCorrelation, string(m.Correlation))
	}
	return nm
}

// Consume takes a route's messages: through a durable JetStream consumer
// when the route names a stream, else a core queue subscription.
func (c *conn) Consume(ctx context.Context, r *bridge.Subscribe, deliver func(*bridge.Inbound)) error {
	if r.Stream != "" {
		return c.consumeStream(ctx, r, deliver)
	}
	sub, err := c.nc.QueueSubscribeSync(r.From, r.Group)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, 256<<20)
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		in := inbound(m.Subject, m.Data, m.Header)
		in.ReplyTo, in.NeverRedelivered = m.Reply, true
		deliver(in)
	}
}

// consumeStream takes messages from a durable consumer of the route's stream
// (made, or updated, with the route's filter), acknowledging each when errand
// has committed it.
func (c *conn) consumeStream(ctx context.Context, r *bridge.Subscribe, deliver func(*bridge.Inbound)) error {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, r.Stream, jetstream.ConsumerConfig{Durable: r.Durable,
		FilterSubject: r.From, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait: 30 * time.Second, MaxAckPending: 1000})
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s: %w", r.Durable, r.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return err
		}
		in := inbound(m.Subject(), m.Data(), m.Headers())
		if md, err := m.Metadata(); err == nil {
			in.Redelivered = md.NumDelivered > 1
			if in.ID == "" {
				in.ID = fmt.Sprintf("js:%s:%d", md.Stream, md.Sequence.Stream)
			}
		}
		in.ReplyTo = m.Headers().Get(HeaderReplyTo)
		in.Ack = m.Ack
		deliver(in)
	}
}

func inbound(subject string, data []byte, h nats.Header) *bridge.Inbound {
	in := &bridge.Inbound{Topic: subject, Payload: data}
	if h != nil {
		in.ID, in.ContentType, in.Type = h.Get(jetstream.MsgIDHeader), h.Get("Content-Type"), h.Get(HeaderType)
		if v := h.Get(HeaderCorrelation); v != "" {
			in.Correlation = []byte(v)
		}
	}
	return in
}
