package graphql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/errandhq/errand"
	"github.com/errandhq/errand/event"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// source is what a subscription's root resolver leaves for its transport: a
// reader of one stream of the event log (event.Follow, the reader SSE and
// WebSocket use) and how its deliveries become the values the resolver's
// channel carries. The transport runs the reader on the subscription's
// goroutine and asks the executor for the next result as soon as a value is
// on the channel, so a subscription costs one goroutine, and the reader's
// cursor is exactly what the client has been sent.
type source struct {
	follow *event.Follow
	// send puts d's value on the channel; false: nothing to answer for d.
	send func(ctx context.Context, d *event.Frame) (bool, error)
	// flush, when set, runs where the reader flushes (no event waiting): the
	// job subscription puts the job's state then, once per burst.
	flush func(ctx context.Context) (bool, error)
	// resumable: each result answers one event, whose cursor a resubscribe
	// may start after.
	resumable bool
}

type subscriptionResolver resolver

// JobEvents follows a job's stream from after (from its start without it)
// until its terminal event; a finished job with nothing after the cursor
// completes at once.
func (s *subscriptionResolver) JobEvents(ctx context.Context, id string, after *string) (<-chan *errand.Event, error) {
	c := callerOf(ctx)
	seq, err := resumeCursor(c, after)
	if err != nil {
		return nil, err
	}
	j, err := s.d.Jobs.Get(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	ch := make(chan *errand.Event, 1)
	if j.Status.Terminal() {
		rest, err := s.d.Jobs.Events(ctx, c.p, id, errand.FormatCursor(seq), 1)
		if err != nil {
			return nil, err
		}
		if len(rest) == 0 {
			close(ch)
			return ch, nil
		}
	}
	c.src = &source{follow: s.follower(c, id, seq), resumable: true, send: sendEvent(ch)}
	c.src.follow.Until = terminal
	return ch, nil
}

// Job pushes the job's state: now, then after each burst of changes, until
// it has finished.
func (s *subscriptionResolver) Job(ctx context.Context, id string) (<-chan *errand.Job, error) {
	c := callerOf(ctx)
	if _, err := s.d.Jobs.Get(ctx, c.p, id); err != nil {
		return nil, err
	}
	ch := make(chan *errand.Job, 1)
	changed := false
	c.src = &source{follow: s.follower(c, id, 0),
		send: func(context.Context, *event.Frame) (bool, error) { changed = true; return false, nil },
		flush: func(ctx context.Context) (bool, error) {
			if !changed {
				return false, nil
			}
			changed = false
			j, err := s.d.Jobs.Get(ctx, c.p, id)
			if err != nil {
				return false, err
			}
			ch <- j
			return true, nil
		}}
	c.src.follow.Until = terminal
	return ch, nil
}

// Channel follows a channel: live without a cursor, else after it.
func (s *subscriptionResolver) Channel(ctx context.Context, name string, after *string) (<-chan *errand.Event, error) {
	c := callerOf(ctx)
	seq, err := resumeCursor(c, after)
	if err != nil {
		return nil, err
	}
	if _, err := s.d.Channels.Subscribable(c.p, name); err != nil {
		return nil, err
	}
	ch := make(chan *errand.Event, 1)
	c.src = &source{follow: s.follower(c, name, seq), resumable: true, send: sendEvent(ch)}
	c.src.follow.Live = after == nil && c.lastEventID == ""
	return ch, nil
}

func (s *subscriptionResolver) follower(c *caller, stream string, after int64) *event.Follow {
	return &event.Follow{Store: s.d.Store, Hub: s.d.Hub, Tenant: c.p.Tenant, Stream: stream, After: after, Buffer: followBuffer}
}

// followBuffer is how many events wait for a subscription's reader in the hub
// before it falls back to the store (small: idle subscribers are many, and
// catching up is exact).
const followBuffer = 64

func sendEvent(ch chan<- *errand.Event) func(context.Context, *event.Frame) (bool, error) {
	return func(_ context.Context, d *event.Frame) (bool, error) {
		ch <- d.Event
		return true, nil
	}
}

// resumeCursor is where a subscription starts: an event stream's
// Last-Event-ID wins over the after argument.
func resumeCursor(c *caller, after *string) (int64, error) {
	return errand.ResumeCursor(c.lastEventID, deref(after))
}

func terminal(e *errand.Event) bool { return errand.TerminalEvent(e.Type) }

// results is where a transport takes an operation's results: each one's
// JSON (an ExecutionResult) with the cursor of the event it answers and the
// cursor before it (0 and 0 when it answers none). wait says the result may
// wait for room (it answers no live event: the one result of a query, or an
// event read from the store); else a transport that has no room returns
// event.ErrSlow.
type results interface {
	next(payload []byte, cursor, prev int64, wait bool) error
	flush() error
}

// pinger is results that want a keepalive while idle (an event stream).
type pinger interface {
	ping() (every time.Duration, fn func() error)
}

// errDone ends a subscription whose context ended.
var errDone = errors.New("the subscription ended")

// run executes a prepared operation as c and hands its results to out. It
// returns when the operation is done: a query's or mutation's result was
// handed over, a subscription reached its job's terminal event, ctx ended
// (nil), or the subscription failed (its error: event.ErrSlow,
// *event.CursorTooOld, or the reader's).
func (s *Server) run(ctx context.Context, c *caller, op *graphql.OperationContext, out results) error {
	ctx = withCaller(ctx, c)
	var handler graphql.ResponseHandler
	dispatch := func() { handler, ctx = s.exec.DispatchOperation(ctx, op) }
	if op.Operation.Operation == ast.Subscription {
		offStack(dispatch) // the subscription's goroutine lives on: keep its stack small
	} else {
		dispatch()
	}
	if c.src == nil {
		for resp := handler(ctx); resp != nil; resp = handler(ctx) {
			if err := out.next(payload(resp), 0, 0, true); err != nil {
				return err
			}
		}
		return out.flush()
	}
	src, f := c.src, c.src.follow
	answer := func(cursor, prev int64) error {
		resp := handler(ctx)
		if resp == nil {
			return errDone
		}
		return out.next(payload(resp), cursor, prev, f.Replaying())
	}
	memo := ""
	if src.resumable && src.flush == nil {
		memo = memoKey(op)
	}
	f.Send = func(d *event.Frame) error {
		prev := f.After
		if memo != "" {
			// Executed once per event for every subscriber of this document.
			if b := d.Memo(memo, func() []byte { return s.render(ctx, handler, src, d) }); b != nil {
				return out.next(b, d.Seq, prev, f.Replaying())
			}
			if ctx.Err() != nil {
				return errDone
			}
		}
		if ok, err := src.send(ctx, d); !ok || err != nil {
			return err
		}
		return answer(d.Seq, prev)
	}
	f.Flush = func() error {
		if src.flush != nil {
			if ok, err := src.flush(ctx); err != nil {
				return err
			} else if ok {
				if err := answer(0, 0); err != nil {
					return err
				}
			}
		}
		return out.flush()
	}
	if p, ok := out.(pinger); ok {
		f.Idle, f.OnIdle = p.ping()
	}
	err := f.Run(ctx)
	if errors.Is(err, errDone) || ctx.Err() != nil && !errors.Is(err, event.ErrSlow) {
		return nil
	}
	return err
}

// render executes the next result for d; nil when there is none (ctx ended).
func (s *Server) render(ctx context.Context, handler graphql.ResponseHandler, src *source, d *event.Frame) []byte {
	if ok, err := src.send(ctx, d); !ok || err != nil {
		return nil
	}
	resp := handler(ctx)
	if resp == nil {
		return nil
	}
	return payload(resp)
}

// offStack runs fn on a goroutine of its own and waits for it: parsing,
// validating and starting an operation go deep, and on a subscription's
// long-lived goroutine they would grow its stack for good (idle subscribers
// are many).
func offStack(fn func()) {
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	<-done
}

// payload is a response as an ExecutionResult: data only when the operation
// ran (a request error has none), errors and extensions when there are some.
func payload(resp *graphql.Response) []byte {
	b := make([]byte, 0, len(resp.Data)+16)
	b = append(b, '{')
	if resp.Data != nil {
		b = append(append(b, `"data":`...), resp.Data...)
	}
	if len(resp.Errors) > 0 {
		if len(b) > 1 {
			b = append(b, ',')
		}
		errs, _ := json.Marshal(resp.Errors)
		b = append(append(b, `"errors":`...), errs...)
	}
	if len(resp.Extensions) > 0 {
		if len(b) > 1 {
			b = append(b, ',')
		}
		ext, _ := json.Marshal(resp.Extensions)
		b = append(append(b, `"extensions":`...), ext...)
	}
	return append(b, '}')
}

// endError is the error a subscription that ended early sends: it fell
// behind (its connection's queue filled), its cursor is older than what is
// kept, or it failed. resumeAfter is the cursor of the last event the client
// was sent, for a resumable subscription.
func endError(err error, resumable bool, resumeAfter int64) *gqlerror.Error {
	var old *event.CursorTooOld
	var ahead *event.CursorAhead
	switch {
	case errors.As(err, &old):
		return &gqlerror.Error{Message: fmt.Sprintf("events up to cursor %d are no longer kept; subscribe with after: %q to go on from the oldest kept", old.Floor, errand.FormatCursor(old.Floor)),
			Extensions: map[string]any{"code": errand.ECURSOR, "resumeAfter": errand.FormatCursor(old.Floor)}}
	case errors.As(err, &ahead):
		return &gqlerror.Error{Message: fmt.Sprintf("the cursor is beyond the last event of the log (%d): it comes from another log, or from before a restore; subscribe with after: %q to go on from the head",
			ahead.Head, errand.FormatCursor(ahead.Head)), Extensions: map[string]any{"code": errand.ECURSOR, "resumeAfter": errand.FormatCursor(ahead.Head)}}
	case errors.Is(err, event.ErrSlow) && resumable:
		after := errand.FormatCursor(resumeAfter)
		return &gqlerror.Error{Message: fmt.Sprintf("the subscriber fell behind (its queue is full); subscribe again with after: %q to resume without a gap", after),
			Extensions: map[string]any{"code": codeSlow, "resumeAfter": after}}
	case errors.Is(err, event.ErrSlow):
		return &gqlerror.Error{Message: "the subscriber fell behind (its queue is full); subscribe again",
			Extensions: map[string]any{"code": codeSlow}}
	}
	var e *errand.Error
	if errors.As(err, &e) {
		return &gqlerror.Error{Message: e.Message, Extensions: map[string]any{"code": e.Code}}
	}
	return &gqlerror.Error{Message: "internal error", Extensions: map[string]any{"code": errand.EINTERNAL}}
}

// codeSlow is the code of a subscriber that fell behind (the WebSocket
// errand.v1 protocol's reset reason).
const codeSlow = "slow_consumer"
