package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/jsonguard"
	"github.com/errandhq/errand/storage"
)

// consumer is a subscribe route: it takes messages from the broker, commits
// them (an event, or a job) with the record of their id, and only then
// acknowledges them.
type consumer struct {
	b      *Bridge
	route  *Subscribe
	scope  string // the de-duplication records': <bridge>/<route>
	kind   string // "channel" or "jobs"
	target string // the channel or operation
	st     counters
}

func newConsumer(b *Bridge, s *Subscribe) *consumer {
	kind, target, _ := cutTarget(s.To)
	return &consumer{b: b, route: s, scope: b.cfg.Name + "/" + s.Name, kind: kind, target: target}
}

// maxTake is the most messages one transaction commits (job.MaxBatch).
const maxTake = job.MaxBatch

// run consumes while the bridge is connected, until ctx ends.
func (c *consumer) run(ctx context.Context) {
	for failures := 0; ctx.Err() == nil; {
		conn, err := c.b.link.get(ctx)
		if err != nil {
			return
		}
		cctx, cancel := context.WithCancel(ctx)
		in := make(chan *Inbound, min(c.b.cfg.Batch, maxTake))
		done := make(chan error, 1)
		go func() {
			done <- conn.Consume(cctx, c.route, func(m *Inbound) {
				select {
				case in <- m:
				case <-cctx.Done():
				}
			})
		}()
		err = c.take(cctx, conn, in, done)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.st.fail(fmt.Errorf("consume %s: %w", c.route.From, err), c.b.d.Now())
			c.b.log.Warn("bridge subscription ended; subscribing again", "from", c.route.From, "err", err)
		}
		failures++
		sleep(ctx, backoff(failures))
	}
}

// take commits and acknowledges what arrives, in batches of what is waiting,
// until the subscription ends. Messages taken but not yet committed when it
// ends are never acknowledged: the broker delivers them again.
func (c *consumer) take(ctx context.Context, conn Conn, in <-chan *Inbound, done <-chan error) error {
	limit := min(c.b.cfg.Batch, maxTake)
	for {
		var batch []*Inbound
		select {
		case <-ctx.Done():
			return nil
		case err := <-done:
			return err
		case m := <-in:
			batch = append(batch, m)
		}
	more:
		for len(batch) < limit {
			select {
			case m := <-in:
				batch = append(batch, m)
			default:
				break more
			}
		}
		if !c.commit(ctx, conn, batch) {
			return nil
		}
		for _, m := range batch {
			if m.Ack == nil {
				continue
			}
			if err := m.Ack(); err != nil {
				c.st.fail(fmt.Errorf("acknowledge: %w", err), c.b.d.Now())
			}
		}
	}
}

// taken is one message on its way in.
type taken struct {
	m       *Inbound
	data    json.RawMessage
	typ     string
	refusal error // the message cannot be taken (too large)
	key     string
	window  time.Duration
	enforce bool // a live record of key means a redelivery
}

// commit commits a batch, retrying failures of the store until they pass (or
// ctx ends: it then reports false, and nothing is acknowledged).
func (c *consumer) commit(ctx context.Context, conn Conn, batch []*Inbound) bool {
	ts := make([]*taken, len(batch))
	for i, m := range batch {
		ts[i] = c.prepare(m)
	}
	for n := 0; ; n++ {
		var errs []error
		var err error
		if c.kind == "channel" {
			errs, err = c.publish(ctx, ts)
		} else {
			errs, err = c.submit(ctx, ts)
		}
		if err == nil {
			c.answer(ctx, conn, ts, errs)
			return true
		}
		c.st.fail(fmt.Errorf("commit: %w", err), c.b.d.Now())
		if sleep(ctx, backoff(n)); ctx.Err() != nil {
			return false
		}
	}
}

// prepare reads a message: its payload as JSON, its de-duplication key.
func (c *consumer) prepare(m *Inbound) *taken {
	t := &taken{m: m, typ: c.route.Type}
	if m.Type != "" && channel.ValidType(m.Type) {
		t.typ = m.Type
	}
	if len(m.Payload) > c.b.cfg.MaxMessageBytes {
		t.refusal = errand.Errorf(errand.ETOOLARGE, "the message is %d bytes, over the bridge's limit of %d", len(m.Payload), c.b.cfg.MaxMessageBytes)
		return t
	}
	t.data = payloadJSON(m.Payload, m.ContentType)
	switch {
	case m.ID != "":
		t.key, t.window, t.enforce = "id:"+m.ID, c.b.cfg.DedupWindow, true
	case !m.NeverRedelivered:
		h := sha256.New()
		h.Write([]byte(m.Topic))
		h.Write([]byte{0})
		h.Write(m.Payload)
		t.key, t.window, t.enforce = "sha256:"+hex.EncodeToString(h.Sum(nil)), c.b.cfg.HashWindow, m.Redelivered
	}
	return t
}

// payloadJSON is a message's payload as the JSON errand keeps: itself when
// it is JSON (and its content type, if any, says so), else an object with
// its content type and the payload as text (UTF-8) or base64.
func payloadJSON(p []byte, contentType string) json.RawMessage {
	ct, _, _ := mime.ParseMediaType(contentType)
	if (ct == "" || ct == "application/json" || strings.HasSuffix(ct, "+json")) && jsonguard.Valid(p) {
		return append(json.RawMessage(nil), p...)
	}
	var v struct {
		ContentType string `json:"content_type"`
		Text        string `json:"text,omitempty"`
		Base64      string `json:"base64,omitempty"`
	}
	v.ContentType = contentType
	if utf8.Valid(p) && !strings.ContainsRune(string(p), 0) {
		v.Text = string(p)
		if v.ContentType == "" {
			v.ContentType = "text/plain; charset=utf-8"
		}
	} else {
		v.Base64 = base64.StdEncoding.EncodeToString(p)
		if v.ContentType == "" {
			v.ContentType = "application/octet-stream"
		}
	}
	b, _ := json.Marshal(v)
	return b
}

// seen is a message's step in its transaction: record its key, and skip it
// when a live record says it is a redelivery.
func (c *consumer) seen(t *taken, now time.Time, skip error) func(tx storage.Tx) error {
	return func(tx storage.Tx) error {
		if t.key == "" {
			return nil
		}
		was, err := tx.SeenMessage(c.scope, t.key, now, now.Add(t.window))
		if err != nil {
			return err
		}
		if was && t.enforce {
			return skip
		}
		return nil
	}
}

// publish appends the batch to the route's channel in one transaction.
func (c *consumer) publish(ctx context.Context, ts []*taken) ([]error, error) {
	now := c.b.d.Now()
	var msgs []channel.Message
	var idx []int
	errs := make([]error, len(ts))
	for i, t := range ts {
		if t.refusal != nil {
			errs[i] = t.refusal
			continue
		}
		msgs = append(msgs, channel.Message{Channel: c.target, Type: t.typ, Data: t.data, InTx: c.seen(t, now, channel.ErrSkip)})
		idx = append(idx, i)
	}
	if len(msgs) == 0 {
		return errs, nil
	}
	_, out, err := c.b.d.Channels.PublishMany(ctx, c.b.principal, msgs)
	if err != nil {
		return nil, err
	}
	for k, i := range idx {
		errs[i] = out[k]
		if errors.Is(out[k], channel.ErrSkip) {
			errs[i] = errSkip
		}
	}
	return errs, nil
}

// errSkip marks a redelivery in a batch's answers.
var errSkip = errors.New("already taken")

// submit submits the batch as jobs of the route's operation in one
// transaction; a message with a reply address owes a reply, stored with its job.
func (c *consumer) submit(ctx context.Context, ts []*taken) ([]error, error) {
	now := c.b.d.Now()
	var sps []job.SubmitParams
	var idx []int
	errs := make([]error, len(ts))
	for i, t := range ts {
		if t.refusal != nil {
			errs[i] = t.refusal
			continue
		}
		seen := c.seen(t, now, job.ErrSkip)
		m := t.m
		sps = append(sps, job.SubmitParams{Operation: c.target, Input: t.data, InTx: func(tx storage.Tx, j *errand.Job) error {
			if err := seen(tx); err != nil || m.ReplyTo == "" {
				return err
			}
			return tx.InsertBridgeReply(&storage.BridgeReply{JobID: j.ID, Bridge: c.b.cfg.Name, Address: m.ReplyTo,
				Correlation: m.Correlation, CreatedAt: now})
		}})
		idx = append(idx, i)
	}
	if len(sps) == 0 {
		return errs, nil
	}
	_, out, err := c.b.d.Jobs.SubmitMany(ctx, c.b.principal, sps)
	if err != nil {
		return nil, err
	}
	for k, i := range idx {
		errs[i] = out[k]
		if errors.Is(out[k], job.ErrSkip) {
			errs[i] = errSkip
		}
	}
	return errs, nil
}

// answer counts what a committed batch did, and answers each refused
// message on its reply address with the problem.
func (c *consumer) answer(ctx context.Context, conn Conn, ts []*taken, errs []error) {
	now, in := c.b.d.Now(), 0
	for i, err := range errs {
		switch {
		case err == nil:
			in++
		case errors.Is(err, errSkip):
			c.st.duplicates.Add(1)
		default:
			c.refuse(ctx, conn, ts[i].m, err, now)
		}
	}
	c.st.done(in, now)
}

// refuse records a message errand would not take (logged, counted, the last
// kept in the status) and answers it on its reply address, if any.
func (c *consumer) refuse(ctx context.Context, conn Conn, m *Inbound, err error, now time.Time) {
	msg := fmt.Sprintf("%s: %s", errand.ErrorCode(err), errand.ErrorMessage(err))
	c.st.refused(msg, now)
	c.b.log.Warn("bridge refused a message", "from", m.Topic, "id", m.ID, "to", c.route.To, "problem", msg)
	if m.ReplyTo == "" {
		return
	}
	body, _ := json.Marshal(problemOf(err))
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	perr := conn.Publish(rctx, []*Message{{Address: m.ReplyTo, Reply: true, Correlation: m.Correlation, Type: "error",
		Time: now, Body: body, ContentType: "application/problem+json"}})
	if perr != nil {
		c.b.log.Warn("bridge could not answer a refused message", "reply_to", m.ReplyTo, "err", perr)
	}
}

// problemOf is an error as the problem a refused message's reply carries.
func problemOf(err error) *errand.Problem {
	p := &errand.Problem{Code: errand.ErrorCode(err), Detail: errand.ErrorMessage(err)}
	p.Type = "/docs/problems#" + p.Code
	var e *errand.Error
	if errors.As(err, &e) {
		p.Errors = e.Fields
	}
	return p
}

func (c *consumer) status() RouteStatus {
	s := RouteStatus{Name: c.route.Name, From: c.route.From, To: c.route.To}
	c.st.fill(&s, false, 0)
	s.Cursor, s.Lag = nil, nil
	return s
}
