// Package mqtt is the MQTT 5 adapter of errand's broker bridges
// (github.com/eclipse/paho.golang).
//
// Out: QoS 1 (or 2) publishes, each confirmed by its PUBACK (PUBCOMP),
// pipelined in order on the connection (MQTT keeps a connection's order). The event id travels as
// the user property errand-id, with errand-type, errand-stream and
// errand-time, the content type application/json and payload format UTF-8.
// In: each route is a shared subscription ($share/<group>/<from>) at the
// bridge's QoS on a session the broker keeps (clean start off, session
// expiry), so errand's nodes share the messages and those sent while errand
// is away wait for it; every message is acknowledged by hand, after commit.
// A message with a response topic gets its job's result there with its
// correlation data.
package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/errandhq/errand/bridge"
)

// The user properties errand writes (and reads: message-id and type are
// also read, as publishers name them).
const (
	PropID     = "errand-id"
	PropType   = "errand-type"
	PropStream = "errand-stream"
	PropTime   = "errand-time"
)

// Dialer connects to an MQTT 5 broker.
type Dialer struct{}

var _ bridge.Dialer = Dialer{}

// ClientID is the client id of a bridge on this node: the configured one, or
// errand-<bridge>-<hostname> (stable across restarts, so the broker keeps
// the session and what waits in it).
func ClientID(cfg *bridge.Config) string {
	if cfg.Options.ClientID != "" {
		return cfg.Options.ClientID
	}
	host, _ := os.Hostname()
	return "errand-" + cfg.Name + "-" + host
}

// Dial connects and starts a session the broker keeps.
func (Dialer) Dial(ctx context.Context, cfg *bridge.Config, ep *bridge.Endpoint) (bridge.Conn, error) {
	tc, err := cfg.Options.TLS.Config(ep.Hosts[0], ep.TLS)
	if err != nil {
		return nil, err
	}
	var nc net.Conn
	d := &net.Dialer{Timeout: 10 * time.Second}
	if tc != nil {
		nc, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", ep.Hosts[0])
	} else {
		nc, err = d.DialContext(ctx, "tcp", ep.Hosts[0])
	}
	if err != nil {
		return nil, err
	}
	c := &conn{qos: byte(cfg.Options.QoS), lost: make(chan struct{}), routes: map[int]func(*bridge.Inbound, *paho.Publish){},
		pending: map[int][]held{}, wrote: make(chan struct{}, 1)}
	c.cl = paho.NewClient(paho.ClientConfig{ClientID: ClientID(cfg), Conn: packets.NewThreadSafeConn(&watched{nc, c.wrote}),
		EnableManualAcknowledgment: true, SendAcksInterval: 5 * time.Millisecond,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){c.received},
		OnClientError:     func(error) { c.markLost() }, OnServerDisconnect: func(*paho.Disconnect) { c.markLost() },
		PacketTimeout: 30 * time.Second})
	expiry := uint32(cfg.Options.SessionExpiry / time.Second)
	cp := &paho.Connect{ClientID: ClientID(cfg), KeepAlive: 30, CleanStart: false,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}
	if u, p := cfg.Credentials(ep); u != "" {
		cp.Username, cp.UsernameFlag = u, true
		cp.Password, cp.PasswordFlag = []byte(p), p != ""
	}
	ca, err := c.cl.Connect(ctx, cp)
	if err != nil {
		nc.Close()
		if ca != nil {
			return nil, fmt.Errorf("the broker refused the connection: %s (reason %d)", ca.Properties.ReasonString, ca.ReasonCode)
		}
		return nil, err
	}
	go func() { <-c.cl.Done(); c.markLost() }()
	return c, nil
}

// watched is the TCP connection paho writes to, telling wrote when a
// PUBLISH packet starts (its first byte's type is 3). paho writes a packet
// whole under the connection's lock, so once one has started, the next
// publish cannot get ahead of it on the wire.
type watched struct {
	net.Conn
	wrote chan struct{}
}

func (w *watched) Write(b []byte) (int, error) {
	if len(b) > 0 && b[0]>>4 == 3 {
		select {
		case w.wrote <- struct{}{}:
		default:
		}
	}
	return w.Conn.Write(b)
}

// conn is one MQTT connection.
type conn struct {
	cl    *paho.Client
	qos   byte
	lane  sync.Mutex    // one Publish batch at a time: errand's publishes are the only PUBLISH packets it writes
	wrote chan struct{} // a PUBLISH packet has started on the wire
	once  sync.Once
	lost  chan struct{}

	mu      sync.Mutex
	routes  map[int]func(*bridge.Inbound, *paho.Publish) // by subscription identifier
	pending map[int][]held                               // what the session sent before its route subscribed
}

// held is a message that arrived before its route was there.
type held struct {
	in *bridge.Inbound
	p  *paho.Publish
	at time.Time
}

// subscriptionID is a route's subscription identifier: the same in every
// run (the broker's session keeps it with the subscription, and messages
// waiting there come back with it, before the route subscribes again).
func subscriptionID(filter string) int {
	h := fnv.New32a()
	h.Write([]byte(filter))
	return int(h.Sum32()%(1<<28-1)) + 1
}

func (c *conn) markLost()             { c.once.Do(func() { close(c.lost) }) }
func (c *conn) Lost() <-chan struct{} { return c.lost }

// Close ends the connection without ending the session (its subscriptions
// and the messages for them wait at the broker).
func (c *conn) Close() error {
	_ = c.cl.Disconnect(&paho.Disconnect{ReasonCode: 0})
	c.markLost()
	return nil
}

// Publish pipelines the batch: each message is handed to paho once the one
// before it has started on the wire (so the broker gets them in order, and
// they are in flight together, up to the broker's receive maximum), then
// every acknowledgement is awaited.
func (c *conn) Publish(ctx context.Context, msgs []*bridge.Message) error {
	c.lane.Lock()
	defer c.lane.Unlock()
	errs := make(chan error, len(msgs))
	for _, m := range msgs {
		select { // a write seen before this message's is another's
		case <-c.wrote:
		default:
		}
		early := make(chan struct{})
		go func() {
			err := c.publishOne(ctx, m)
			close(early)
			errs <- err
		}()
		select {
		case <-c.wrote:
		case <-early: // failed (or done) before writing: nothing to wait for
		case <-ctx.Done():
		case <-c.lost:
		}
	}
	var first error
	for range msgs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (c *conn) publishOne(ctx context.Context, m *bridge.Message) error {
	utf8 := byte(1)
	props := &paho.PublishProperties{ContentType: m.ContentType, PayloadFormat: &utf8, CorrelationData: m.Correlation,
		User: paho.UserProperties{{Key: PropType, Value: m.Type}, {Key: PropTime, Value: m.Time.UTC().Format(time.RFC3339Nano)}}}
	if m.ID != "" {
		props.User = append(props.User, paho.UserProperty{Key: PropID, Value: m.ID})
	}
	if m.Stream != "" {
		props.User = append(props.User, paho.UserProperty{Key: PropStream, Value: m.Stream})
	}
	r, err := c.cl.Publish(ctx, &paho.Publish{QoS: c.qos, Topic: m.Address, Payload: m.Body, Properties: props})
	if err != nil {
		return err
	}
	if r != nil && r.ReasonCode >= 0x80 {
		return fmt.Errorf("the broker refused the message to %s: reason %d %s", m.Address, r.ReasonCode, r.Properties.ReasonString)
	}
	return nil
}

// Consume subscribes the route (shared between errand's nodes by its group)
// and hands each message on; it returns when ctx ends or the connection is
// lost. The subscription stays in the session: messages that arrive while
// errand is away wait for it.
func (c *conn) Consume(ctx context.Context, r *bridge.Subscribe, deliver func(*bridge.Inbound)) error {
	filter := r.From
	if r.Group != "" {
		filter = "$share/" + r.Group + "/" + r.From
	}
	id := subscriptionID(filter)
	route := func(in *bridge.Inbound, p *paho.Publish) {
		in.Ack = func() error { return c.cl.Ack(p) }
		deliver(in)
	}
	c.mu.Lock()
	c.routes[id] = route
	early := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	defer func() { c.mu.Lock(); delete(c.routes, id); c.mu.Unlock() }()
	for _, h := range early {
		route(h.in, h.p)
	}
	sa, err := c.cl.Subscribe(ctx, &paho.Subscribe{Properties: &paho.SubscribeProperties{SubscriptionIdentifier: &id},
		Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: c.qos}}})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	if len(sa.Reasons) > 0 && sa.Reasons[0] >= 0x80 {
		return fmt.Errorf("the broker refused the subscription to %s: reason %d", filter, sa.Reasons[0])
	}
	select {
	case <-ctx.Done():
		return nil
	case <-c.lost:
		return errors.New("the connection was lost")
	}
}

// received routes an incoming message to its route, by subscription
// identifier (or by matching its topic against the routes' filters).
func (c *conn) received(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	in := &bridge.Inbound{Topic: p.Topic, Payload: p.Payload, Redelivered: p.Duplicate()}
	var sid int
	if pp := p.Properties; pp != nil {
		in.ContentType, in.ReplyTo, in.Correlation = pp.ContentType, pp.ResponseTopic, pp.CorrelationData
		in.ID = first(pp.User.Get(PropID), pp.User.Get("message-id"))
		in.Type = first(pp.User.Get(PropType), pp.User.Get("type"))
		if pp.SubscriptionIdentifier != nil {
			sid = *pp.SubscriptionIdentifier
		}
	}
	c.mu.Lock()
	route := c.routes[sid]
	if route == nil {
		c.pending[sid] = append(c.pending[sid], held{in, p, time.Now()})
		c.dropOrphans()
	}
	c.mu.Unlock()
	if route != nil {
		route(in, p)
	}
	return true, nil
}

// orphanAfter is how long a message from the session waits for its route.
// One whose route never comes (a subscription a removed route left in the
// session) is then acknowledged and dropped: the acknowledgements of later
// messages would wait behind it (MQTT acknowledges in order).
const orphanAfter = time.Minute

// dropOrphans acknowledges what waited for its route too long (c.mu held).
func (c *conn) dropOrphans() {
	for sid, hs := range c.pending {
		if _, ok := c.routes[sid]; !ok && time.Since(hs[0].at) > orphanAfter {
			for _, h := range hs {
				_ = c.cl.Ack(h.p)
			}
			delete(c.pending, sid)
		}
	}
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
