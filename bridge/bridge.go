// Package bridge connects errand's event log to message brokers, both ways.
//
// A bridge is one broker connection (Config.URL) with routes. A publish route
// reads the whole log in order from a durable cursor (storage.Reader.ListLog),
// keeps the events its filter selects (the webhook filter syntax), renders
// each one's address from a template and hands them to the broker; the cursor
// moves only after the broker confirmed them, so an outage or a crash loses
// nothing and repeats at most the last batch, each message carrying its
// event id as the de-duplication id. On several nodes each publish route runs
// on one node at a time (an Elector per route). A subscribe route takes
// messages (shared between nodes by the broker's own means) and appends each
// to a channel or submits it as a job, through the channel and job services
// and their permission checks, recording the message's id in the same
// transaction so that a redelivery is not taken twice; only then is the
// message acknowledged. A job submitted from a message with a reply address
// owes a reply, stored with the job; the bridge's replies route sends the
// job's terminal event there when it passes in the log.
//
// What depends on the broker is behind Dialer and Conn, one adapter per
// broker: bridge/nats, bridge/amqp, bridge/mqtt, bridge/kafka.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/lifecycle"
	"github.com/errandhq/errand/storage"
)

// Elector says whether this node runs a publish route now (one node of
// several on PostgreSQL: postgres.Leader).
type Elector interface {
	lifecycle.Service
	IsLeader() bool
}

// Deps are what the bridges work with.
type Deps struct {
	Store    storage.Store
	Channels *channel.Service
	Jobs     *job.Service
	// Dialers connect to each kind of broker (NATS, AMQP, MQTT, Kafka); a
	// bridge of a kind without one is refused by New.
	Dialers map[string]Dialer
	// Elect makes the elector of a route (named bridge:<name>/<route>); nil
	// means this node runs every route (SQLite: one node).
	Elect func(name string) Elector
	// Log defaults to slog.Default(); Now to errand.Now.
	Log *slog.Logger
	Now func() time.Time
}

// Bridges are the configured bridges: one lifecycle.Service, and a
// storage.Notifier (commits wake the publish routes).
type Bridges struct {
	list []*Bridge
	d    Deps
	loop lifecycle.Loop
	head atomic.Int64 // the highest seq this node has heard committed
}

var (
	_ lifecycle.Service = (*Bridges)(nil)
	_ storage.Notifier  = (*Bridges)(nil)
)

// Bridge is one configured bridge.
type Bridge struct {
	cfg       Config
	ep        *Endpoint
	d         *Deps
	principal errand.Principal
	link      *link
	log       *slog.Logger
	pubs      []*publisher
	replies   *publisher // nil without a jobs: subscribe route
	subs      []*consumer
	electors  []Elector
}

// New makes the bridges of cfgs (checked already by config: Check's problems
// are errors here too).
func New(d Deps, cfgs []Config) (*Bridges, error) {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = errand.Now
	}
	bs := &Bridges{d: d}
	for _, c := range cfgs {
		if ps := c.Check(Declared{}); len(ps) > 0 {
			return nil, fmt.Errorf("bridge %q: %v: %s", c.Name, ps[0].Path, ps[0].Message)
		}
		b, err := newBridge(&bs.d, c.withDefaults())
		if err != nil {
			return nil, fmt.Errorf("bridge %q: %w", c.Name, err)
		}
		bs.list = append(bs.list, b)
	}
	return bs, nil
}

func newBridge(d *Deps, c Config) (*Bridge, error) {
	ep, _ := ParseURL(c.URL) // checked
	dialer := d.Dialers[ep.Broker]
	if dialer == nil {
		return nil, fmt.Errorf("this errand has no %s client", ep.Broker)
	}
	b := &Bridge{cfg: c, ep: ep, d: d, log: d.Log.With("bridge", c.Name, "broker", ep.Broker)}
	b.link = newLink(func(ctx context.Context) (Conn, error) { return dialer.Dial(ctx, &b.cfg, b.ep) }, b.log, d.Now)
	var perms []string
	jobOps := map[string]bool{}
	for i := range c.Subscribe {
		s := &b.cfg.Subscribe[i]
		kind, name, _ := cutTarget(s.To)
		if kind == "channel" {
			perms = append(perms, errand.PermChanPublish+":"+name)
		} else {
			perms = append(perms, errand.PermJobsSubmit+":"+name)
			jobOps[name] = true
		}
		b.subs = append(b.subs, newConsumer(b, s))
	}
	b.principal = errand.Principal{ID: "bridge:" + c.Name, Subject: "bridge:" + c.Name, Tenant: c.Tenant,
		Roles: []string{"bridge"}, Permissions: perms, Via: "bridge"}
	for i := range c.Publish {
		p, err := newPublisher(b, &b.cfg.Publish[i])
		if err != nil {
			return nil, err
		}
		b.pubs = append(b.pubs, p)
	}
	if len(jobOps) > 0 {
		b.replies = newReplier(b, jobOps)
	}
	return b, nil
}

// cutTarget splits a subscribe route's to: (channel:<name>, jobs:<op>).
func cutTarget(to string) (kind, name string, ok bool) {
	kind, name, ok = cutOne(to, ':')
	return kind, name, ok
}

func cutOne(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// Start connects every bridge and starts its routes; it does not wait for a
// broker to answer (a broker that is down is dialled again and again, and
// shown in Status and /readyz).
func (bs *Bridges) Start(ctx context.Context) error {
	for _, b := range bs.list {
		if err := b.start(ctx, &bs.loop, &bs.head); err != nil {
			_ = bs.Stop(context.WithoutCancel(ctx))
			return err
		}
	}
	if len(bs.list) > 0 {
		bs.loop.Go(ctx, bs.sweep)
	}
	return nil
}

func (b *Bridge) start(ctx context.Context, loop *lifecycle.Loop, head *atomic.Int64) error {
	loop.Go(ctx, b.link.run)
	for _, p := range b.routes() {
		p.head = head
		if b.d.Elect != nil {
			p.elector = b.d.Elect("bridge:" + p.key)
			if err := p.elector.Start(ctx); err != nil {
				return err
			}
			b.electors = append(b.electors, p.elector)
		}
		loop.Go(ctx, p.run)
	}
	for _, c := range b.subs {
		loop.Go(ctx, c.run)
	}
	return nil
}

// routes are the bridge's outbound routes: publish routes and the replies.
func (b *Bridge) routes() []*publisher {
	out := append([]*publisher(nil), b.pubs...)
	if b.replies != nil {
		out = append(out, b.replies)
	}
	return out
}

// Stop ends every route and connection, then gives up the routes' leadership.
func (bs *Bridges) Stop(ctx context.Context) error {
	err := bs.loop.Halt(ctx)
	for _, b := range bs.list {
		for _, e := range b.electors {
			err = errors.Join(err, e.Stop(ctx))
		}
	}
	return err
}

// Committed wakes the publish routes for the events a commit appended.
func (bs *Bridges) Committed(c *storage.Commit) {
	if len(c.Events) == 0 {
		return
	}
	if s := c.Events[len(c.Events)-1].Seq; s > bs.head.Load() {
		bs.head.Store(s)
	}
	for _, b := range bs.list {
		for _, p := range b.routes() {
			p.poke()
		}
	}
}

// sweepEvery is how often the records of seen messages and stale replies
// are cleaned.
const sweepEvery = 5 * time.Minute

// replyRetention is how long a reply owed for a job that has not ended is
// kept.
const replyRetention = 30 * 24 * time.Hour

// sweep deletes expired records of seen messages and replies owed for
// longer than replyRetention (a job that never ended, a bridge since removed).
func (bs *Bridges) sweep(ctx context.Context) {
	for {
		sleep(ctx, sweepEvery)
		if ctx.Err() != nil {
			return
		}
		now := bs.d.Now()
		for n := 1; n > 0 && ctx.Err() == nil; {
			err := bs.d.Store.WithTx(ctx, func(tx storage.Tx) error {
				a, err := tx.ExpireSeenMessages(now, 1000)
				if err != nil {
					return err
				}
				b, err := tx.ExpireBridgeReplies(now.Add(-replyRetention), 1000)
				n = a + b
				return err
			})
			if err != nil {
				bs.d.Log.Warn("bridges: cleaning seen messages failed", "err", err)
				break
			}
		}
	}
}

// Status reports every bridge whose tenant the caller may see: all of them
// with every set, else those acting in tenant.
func (bs *Bridges) Status(tenant string, every bool) []Status {
	out := []Status{}
	for _, b := range bs.list {
		if every || b.cfg.Tenant == tenant {
			out = append(out, b.status(bs.head.Load()))
		}
	}
	return out
}

// Down returns the status of the bridges whose connection is not up.
func (bs *Bridges) Down() []Status {
	var out []Status
	for _, b := range bs.list {
		if st, _, _ := b.link.status(); st != StateUp {
			out = append(out, b.status(bs.head.Load()))
		}
	}
	return out
}

func (b *Bridge) status(head int64) Status {
	state, since, last := b.link.status()
	s := Status{Name: b.cfg.Name, Broker: b.ep.Broker, URL: b.ep.String(), Tenant: b.cfg.Tenant, State: state, Since: since,
		Publish: []RouteStatus{}, Subscribe: []RouteStatus{}}
	s.LastError, s.LastErrorAt = last.fields()
	for _, p := range b.pubs {
		s.Publish = append(s.Publish, p.status(head))
	}
	for _, c := range b.subs {
		s.Subscribe = append(s.Subscribe, c.status())
	}
	if b.replies != nil {
		r := b.replies.status(head)
		s.Replies = &r
	}
	return s
}
