// Package amqp is the AMQP 0-9-1 (RabbitMQ) adapter of errand's broker
// bridges (github.com/rabbitmq/amqp091-go).
//
// Out: a route's to: is exchange/routing-key (or a queue name, on the
// default exchange); messages are persistent and published on a channel in
// confirm mode, each confirmed by the broker's ack (a nack is an error and
// the batch is sent again). The event id is the message-id, with type,
// timestamp, content type and the headers errand-stream and errand-time. In:
// a route's from: is a queue; errand's nodes consume it side by side
// (competing consumers), each with a prefetch of the bridge's batch, and
// acknowledge every message after commit. A message with reply_to gets its
// job's result there (a queue on the default exchange, or RabbitMQ's direct
// reply-to), with its correlation_id.
package amqp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/errandhq/errand/bridge"
	amqp "github.com/rabbitmq/amqp091-go"
)

// The headers errand adds beside the message's properties.
const (
	HeaderStream = "errand-stream"
	HeaderTime   = "errand-time"
)

// Dialer connects to an AMQP 0-9-1 broker.
type Dialer struct{}

var _ bridge.Dialer = Dialer{}

// Dial connects and opens the channel errand publishes on (confirm mode).
func (Dialer) Dial(ctx context.Context, cfg *bridge.Config, ep *bridge.Endpoint) (bridge.Conn, error) {
	tc, err := cfg.Options.TLS.Config(ep.Hosts[0], ep.TLS)
	if err != nil {
		return nil, err
	}
	u, p := cfg.Credentials(ep)
	if u == "" {
		u, p = "guest", "guest"
	}
	scheme := "amqp://"
	if tc != nil {
		scheme = "amqps://"
	}
	vhost := ep.Path
	if vhost == "" {
		vhost = "/"
	}
	type result struct {
		c   *amqp.Connection
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := amqp.DialConfig(scheme+ep.Hosts[0]+"/"+url.PathEscape(vhost), amqp.Config{
			SASL: []amqp.Authentication{&amqp.PlainAuth{Username: u, Password: p}}, Vhost: vhost, TLSClientConfig: tc,
			Heartbeat: 10 * time.Second, Dial: amqp.DefaultDial(10 * time.Second),
			Properties: amqp.Table{"connection_name": "errand-" + cfg.Name}})
		done <- result{c, err}
	}()
	var ac *amqp.Connection
	select {
	case <-ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		ac = r.c
	}
	c := &conn{ac: ac, lost: make(chan struct{})}
	closed := ac.NotifyClose(make(chan *amqp.Error, 1))
	go func() { <-closed; c.markLost() }()
	if err := c.openPublisher(); err != nil {
		ac.Close()
		return nil, err
	}
	return c, nil
}

// conn is one AMQP connection.
type conn struct {
	ac   *amqp.Connection
	once sync.Once
	lost chan struct{}

	mu sync.Mutex    // one batch at a time on the publishing channel
	pc *amqp.Channel // in confirm mode
}

func (c *conn) markLost()             { c.once.Do(func() { close(c.lost) }) }
func (c *conn) Lost() <-chan struct{} { return c.lost }
func (c *conn) Close() error          { err := c.ac.Close(); c.markLost(); return err }

// openPublisher opens the publishing channel (again, after the broker closed
// it for an error of one message, such as an exchange that does not exist).
func (c *conn) openPublisher() error {
	ch, err := c.ac.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return err
	}
	c.pc = ch
	return nil
}

// Publish sends the batch on the confirm channel, in order, and waits for
// the broker's ack of each.
func (c *conn) Publish(ctx context.Context, msgs []*bridge.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pc == nil || c.pc.IsClosed() {
		if err := c.openPublisher(); err != nil {
			return err
		}
	}
	confirms := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	for _, m := range msgs {
		ex, key := route(m)
		dc, err := c.pc.PublishWithDeferredConfirmWithContext(ctx, ex, key, false, false, publishing(m))
		if err != nil {
			return err
		}
		confirms = append(confirms, dc)
	}
	for i, dc := range confirms {
		acked, err := dc.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !acked {
			return fmt.Errorf("the broker did not take the message to %s", msgs[i].Address)
		}
	}
	return nil
}

// route is where a message goes: exchange and routing key from its
// address; a reply goes to its queue on the default exchange.
func route(m *bridge.Message) (exchange, key string) {
	if m.Reply {
		return "", m.Address
	}
	for i := 0; i < len(m.Address); i++ {
		if m.Address[i] == '/' {
			return m.Address[:i], m.Address[i+1:]
		}
	}
	return "", m.Address
}

func publishing(m *bridge.Message) amqp.Publishing {
	p := amqp.Publishing{ContentType: m.ContentType, DeliveryMode: amqp.Persistent, MessageId: m.ID, Type: m.Type,
		Timestamp: m.Time, AppId: "errand", Body: m.Body,
		Headers: amqp.Table{HeaderTime: m.Time.UTC().Format(time.RFC3339Nano)}}
	if m.Stream != "" {
		p.Headers[HeaderStream] = m.Stream
	}
	if m.Correlation != nil {
		p.CorrelationId = string(m.Correlation)
	}
	return p
}

// Consume consumes the route's queue on a channel of its own, with a
// prefetch of 256, acknowledging each message when errand has committed it.
func (c *conn) Consume(ctx context.Context, r *bridge.Subscribe, deliver func(*bridge.Inbound)) error {
	ch, err := c.ac.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.Qos(256, 0, false); err != nil {
		return err
	}
	ds, err := ch.ConsumeWithContext(ctx, r.From, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume queue %s: %w", r.From, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-ds:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("the broker closed the consumer")
			}
			deliver(inbound(r.From, d))
		}
	}
}

func inbound(queue string, d amqp.Delivery) *bridge.Inbound {
	in := &bridge.Inbound{Topic: queue + "/" + d.Exchange + "/" + d.RoutingKey, Payload: d.Body, ContentType: d.ContentType,
		Type: d.Type, ID: d.MessageId, Redelivered: d.Redelivered, ReplyTo: d.ReplyTo}
	if d.CorrelationId != "" {
		in.Correlation = []byte(d.CorrelationId)
	}
	in.Ack = func() error { return d.Ack(false) }
	return in
}
