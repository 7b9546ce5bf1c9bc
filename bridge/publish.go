package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/webhook"
)

// publisher is an outbound route: a publish route, or a bridge's replies. It
// runs while its node leads it, from the route's durable cursor.
type publisher struct {
	b       *Bridge
	route   *Publish // nil for the replies
	key     string   // the cursor's name: <bridge>/publish/<route>, <bridge>/replies
	filter  *webhook.Filter
	tmpl    Template
	jobOps  map[string]bool // the replies': operations submitted from messages
	elector Elector         // nil: always leads
	head    *atomic.Int64
	wake    chan struct{}
	st      counters
}

func newPublisher(b *Bridge, r *Publish) (*publisher, error) {
	f, err := webhook.ParseFilter(r.Events)
	if err != nil {
		return nil, err
	}
	t, err := ParseTemplate(r.To)
	if err != nil {
		return nil, err
	}
	return &publisher{b: b, route: r, key: b.cfg.Name + "/publish/" + r.Name, filter: f, tmpl: t, wake: make(chan struct{}, 1)}, nil
}

func newReplier(b *Bridge, ops map[string]bool) *publisher {
	return &publisher{b: b, key: b.cfg.Name + "/replies", jobOps: ops, wake: make(chan struct{}, 1)}
}

func (p *publisher) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *publisher) leading() bool { return p.elector == nil || p.elector.IsLeader() }

// run publishes while this node leads the route, until ctx ends.
func (p *publisher) run(ctx context.Context) {
	for ctx.Err() == nil {
		p.st.leading.Store(p.leading())
		if !p.leading() {
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		cursor, err := p.cursor(ctx)
		if err != nil {
			p.st.fail(err, p.b.d.Now())
			sleep(ctx, time.Second)
			continue
		}
		p.st.moved(cursor)
		p.b.log.Info("bridge route running", "route", p.key, "cursor", cursor)
		p.drain(ctx, cursor)
	}
}

// cursor reads the route's stored cursor; a route without one starts at the
// log's head (events from now on), stored at once so that a restart resumes
// there.
func (p *publisher) cursor(ctx context.Context) (int64, error) {
	c, err := p.b.d.Store.BridgeCursor(ctx, p.key)
	if err == nil {
		p.st.moved(c)
		return c, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return 0, err
	}
	head, err := p.b.d.Store.LogHead(ctx)
	if err != nil {
		return 0, err
	}
	now := p.b.d.Now()
	if err := p.b.d.Store.WithTx(ctx, func(tx storage.Tx) error { return tx.PutBridgeCursor(p.key, head, now) }); err != nil {
		return 0, err
	}
	return p.b.d.Store.BridgeCursor(ctx, p.key) // another node may have stored one first
}

// drain reads the log after cursor and publishes, batch by batch, until ctx
// ends or this node stops leading.
func (p *publisher) drain(ctx context.Context, cursor int64) {
	failures := 0
	for ctx.Err() == nil && p.leading() {
		evs, err := p.b.d.Store.ListLog(ctx, cursor, p.b.cfg.Batch)
		if err == nil && len(evs) == 0 {
			p.idle(ctx)
			continue
		}
		var b batch
		if err == nil {
			b, err = p.messages(ctx, evs)
		}
		if err == nil && len(b.msgs) > 0 {
			err = p.send(ctx, &b, failures)
		}
		if err != nil {
			if ctx.Err() == nil {
				p.st.fail(err, p.b.d.Now())
				failures++
				sleep(ctx, backoff(failures))
			}
			continue
		}
		failures = 0
		last := evs[len(evs)-1].Seq
		if !p.save(ctx, last, b.jobs) {
			return
		}
		cursor = last
		p.st.moved(last)
		p.st.done(len(b.msgs)-b.dropped, p.b.d.Now())
	}
}

// idle waits for a commit's wake-up (or a second: another node's commits on
// a store whose notifiers are late).
func (p *publisher) idle(ctx context.Context) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-p.wake:
	case <-t.C:
	}
}

// batch is what one read of the log sends.
type batch struct {
	msgs    []*Message
	jobs    []string // the replies': jobs whose owed reply is in msgs
	dropped int
}

// messages turns the events the route selects into messages.
func (p *publisher) messages(ctx context.Context, evs []storage.LogEvent) (batch, error) {
	var b batch
	for _, e := range evs {
		if e.Tenant != p.b.cfg.Tenant {
			continue
		}
		if p.route == nil {
			m, err := p.reply(ctx, e)
			if err != nil {
				return b, err
			}
			if m != nil {
				b.msgs, b.jobs = append(b.msgs, m), append(b.jobs, e.Stream)
			}
			continue
		}
		if !p.filter.MatchOperation(e.Event, e.Operation) {
			continue
		}
		m, err := eventMessage(e.Event)
		if err != nil {
			return b, err
		}
		m.Address = p.tmpl.Render(func(name string) string { return cleanValue(p.b.ep.Broker, placeholder(e, name)) })
		b.msgs = append(b.msgs, m)
	}
	return b, nil
}

// placeholder is the value of a template's placeholder for an event.
func placeholder(e storage.LogEvent, name string) string {
	switch name {
	case PhChannel:
		if e.Operation == "" && !isJobStream(e.Stream) {
			return e.Stream
		}
	case PhType:
		return e.Type
	case PhOperation:
		return e.Operation
	case PhStream:
		return e.Stream
	}
	return ""
}

func isJobStream(s string) bool { return len(s) > 4 && s[:4] == "job_" }

// eventMessage is an event as a message: its JSON as the body, its id,
// type, stream and time beside it.
func eventMessage(e *errand.Event) (*Message, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %d: %w", e.Seq, err)
	}
	return &Message{ID: e.Cursor(), Type: e.Type, Stream: e.Stream, Time: e.Time, Body: body, ContentType: "application/json"}, nil
}

// reply is the message owed for a job's terminal event, or nil.
func (p *publisher) reply(ctx context.Context, e storage.LogEvent) (*Message, error) {
	if !errand.TerminalEvent(e.Type) || !p.jobOps[e.Operation] {
		return nil, nil
	}
	r, err := p.b.d.Store.GetBridgeReply(ctx, e.Stream)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && r.Bridge != p.b.cfg.Name) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := eventMessage(e.Event)
	if err != nil {
		return nil, err
	}
	m.Address, m.Reply, m.Correlation = r.Address, true, r.Correlation
	return m, nil
}

// maxReplyFailures is how many times a batch of replies is sent again
// before each is sent alone and those that still fail are given up: a reply
// address is the client's, and one that the broker refuses must not hold
// back every other reply.
const maxReplyFailures = 5

// send hands the batch to the broker and waits for its confirms.
func (p *publisher) send(ctx context.Context, b *batch, failures int) error {
	conn, err := p.b.link.get(ctx)
	if err != nil {
		return err
	}
	if p.route == nil && failures >= maxReplyFailures {
		return p.sendEach(ctx, conn, b)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return conn.Publish(pctx, b.msgs)
}

// sendEach sends replies one by one and gives up those that fail.
func (p *publisher) sendEach(ctx context.Context, conn Conn, b *batch) error {
	for _, m := range b.msgs {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := conn.Publish(pctx, []*Message{m})
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			b.dropped++
			p.st.dropped.Add(1)
			p.b.log.Warn("bridge reply given up", "address", m.Address, "event", m.ID, "err", err)
		}
	}
	return nil
}

// save stores the cursor (and forgets the replies sent) after the broker
// confirmed the batch; a failure is retried, since the batch is out. It
// reports false when ctx ended first.
func (p *publisher) save(ctx context.Context, seq int64, jobs []string) bool {
	for n := 0; ; n++ {
		now := p.b.d.Now()
		err := p.b.d.Store.WithTx(ctx, func(tx storage.Tx) error {
			for _, id := range jobs {
				if err := tx.DeleteBridgeReply(id); err != nil && !errors.Is(err, storage.ErrNotFound) {
					return err
				}
			}
			return tx.PutBridgeCursor(p.key, seq, now)
		})
		if err == nil {
			return true
		}
		p.st.fail(fmt.Errorf("store the cursor: %w", err), now)
		if sleep(ctx, backoff(n)); ctx.Err() != nil {
			return false
		}
	}
}

func (p *publisher) status(head int64) RouteStatus {
	s := RouteStatus{Name: p.key}
	if p.route != nil {
		s.Name, s.Events, s.To = p.route.Name, p.route.Events, p.route.To
	} else {
		s.Name, s.To = "replies", "reply addresses"
	}
	s.Role = "standby"
	if p.st.leading.Load() {
		s.Role = "leader"
	}
	p.st.fill(&s, true, head)
	return s
}
