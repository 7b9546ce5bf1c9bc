package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/errandhq/errand"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/job"
)

// WebSocket settings.
const (
	wsProtocol     = "errand.v1"
	wsMaxMessage   = 64 << 10 // bytes a client message may have
	wsMaxSubs      = 100      // subscriptions one connection may hold
	wsEventQueue   = 128      // events waiting to be written, per connection (and Config.StreamBufferBytes of them)
	wsControlQueue = 64       // acks, errors, pongs and resets waiting
	wsPing         = 20 * time.Second
	wsWriteTimeout = 10 * time.Second
	// wsUnauthorized closes a connection whose credential ended (its key was
	// revoked, its token expired), as graphql-transport-ws's 4401 does.
	wsUnauthorized websocket.StatusCode = 4401
)

// wsIn is a client message; which fields matter depends on Op.
type wsIn struct {
	Op        string          `json:"op"`
	ID        string          `json:"id"`
	Channel   string          `json:"channel"`
	Job       string          `json:"job"`
	After     *string         `json:"after"` // absent on a channel: live from now
	Last      int             `json:"last"`  // a channel's last N events, then live
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	Operation string          `json:"operation"`
	Input     json.RawMessage `json:"input"`
	Priority  *int            `json:"priority"`
	Delay     *int            `json:"delay_seconds"`
}

// wsConn is one client connection.
type wsConn struct {
	c       *websocket.Conn
	p       errand.Principal
	denied  func(error) // records a refusal in the audit log
	log     *slog.Logger
	meter   Meter
	deps    Deps
	cfg     *Config
	control chan []byte
	events  chan wsEvent
	queued  atomic.Int64  // bytes of event data in events
	room    chan struct{} // the writer took an event off the queue
	mu      sync.Mutex
	subs    map[string]*wsSub
	closing chan struct{}
	once    sync.Once
	ended   atomic.Bool // closed because the credential ended
	// takeHTTP takes http.rate_limit for a message (access.takeHTTP);
	// header reads the upgrade request's headers (header keys).
	takeHTTP func(ctx context.Context, p errand.Principal, header func(string) string) error
	header   func(string) string
}

// wsSub is one subscription; dead once unsubscribed or reset, after which its
// queued events are dropped, not written.
type wsSub struct {
	id     string
	cancel context.CancelFunc
	dead   atomic.Bool
}

type wsEvent struct {
	sub *wsSub
	d   *event.Frame
}

// handleWS serves GET /v1/ws. Browsers may connect from the CORS origins; any
// other page's origin is refused (cross-site WebSocket hijacking).
func handleWS(acc *access, d Deps, cfg *Config) http.Handler {
	origins := originPatterns(cfg.CORSOrigins)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, err := acc.openStream(r, transportWS)
		if err != nil {
			acc.fail(w, r, err)
			return
		}
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wsProtocol},
			OriginPatterns: origins})
		if err != nil {
			release()
			return // Accept has answered the client
		}
		if c.Subprotocol() != wsProtocol {
			c.Close(websocket.StatusPolicyViolation, "use the sub-protocol "+wsProtocol)
			release()
			return
		}
		c.SetReadLimit(wsMaxMessage)
		ws := &wsConn{c: c, p: principal(r), log: d.Log, meter: acc.meter, deps: d, cfg: cfg, control: make(chan []byte, wsControlQueue),
			events: make(chan wsEvent, wsEventQueue), subs: map[string]*wsSub{}, closing: make(chan struct{}),
			room: make(chan struct{}, 1), takeHTTP: acc.takeHTTP, header: r.Header.Get}
		// Denials on the connection go to the audit log as the request's would.
		ws.denied = func(err error) { acc.recordDenial(r, err, Problem(err).Status) }
		if d.Streams == nil {
			defer release()
			bound, unbind := acc.bindStream(r.Context(), r)
			defer unbind()
			ws.serve(r.Context(), bound)
			return
		}
		// The connection is already taken over from net/http: run it on a goroutine
		// of its own so the handler returns and net/http frees what it held for
		// the request. It ends with the server (Streams), or with the credential.
		bound, unbind := acc.bindStream(d.Streams, r)
		go func() {
			defer release()
			defer unbind()
			ws.serve(d.Streams, bound)
		}()
	})
}

// serve runs the connection: a reader (this goroutine), a writer and a pinger.
// It ends with ctx, or when bound (from bindStream) ends because the
// credential did: then an error message and close code 4401 say why.
func (ws *wsConn) serve(ctx, bound context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(bound, func() {
		if e := credentialEnded(bound); e != nil {
			ws.end(e)
		}
	})
	defer stop()
	go ws.write(ctx)
	err := ws.read(ctx)
	ws.stopAll()
	switch {
	case ws.ended.Load():
	case ctx.Err() != nil:
		ws.c.Close(websocket.StatusGoingAway, "errand is shutting down")
	case errors.Is(err, errWSBinary):
		ws.c.Close(websocket.StatusUnsupportedData, "send JSON text frames")
	case websocket.CloseStatus(err) == -1:
		ws.c.Close(websocket.StatusPolicyViolation, errand.Truncate(err.Error(), 100))
	}
}

var errWSBinary = errors.New("binary frame")

// end closes the connection because its credential ended: an error message
// with the problem, then close code 4401 with the reason.
func (ws *wsConn) end(e *errand.Error) {
	ws.ended.Store(true)
	b, _ := json.Marshal(map[string]any{"op": "error", "id": "", "error": Problem(e)})
	ctx, cancel := context.WithTimeout(context.Background(), wsWriteTimeout)
	defer cancel()
	_ = ws.c.Write(ctx, websocket.MessageText, b)
	ws.c.Close(wsUnauthorized, errand.Truncate("unauthorized: "+e.Message, 120))
}

func (ws *wsConn) read(ctx context.Context) error {
	for {
		typ, b, err := ws.c.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			return errWSBinary
		}
		var m wsIn
		if err := unmarshalStrict(b, &m); err != nil {
			ws.fail("", err)
			continue
		}
		ws.handle(ctx, &m)
	}
}

func (ws *wsConn) handle(ctx context.Context, m *wsIn) {
	switch m.Op {
	case "ping":
		ws.send(map[string]string{"op": "pong", "id": m.ID})
	case "subscribe":
		ws.subscribe(ctx, m)
	case "unsubscribe":
		ws.unsubscribe(m)
	case "publish":
		if err := ws.takeHTTP(ctx, ws.p, ws.header); err != nil {
			ws.fail(m.ID, err)
			return
		}
		e, err := ws.deps.Channels.Publish(ctx, ws.p, m.Channel, m.Type, m.Data)
		ws.reply(m.ID, err, func() any { return published{ID: e.Cursor(), Channel: e.Stream, Time: e.Time} })
	case "submit":
		if err := ws.takeHTTP(ctx, ws.p, ws.header); err != nil {
			ws.fail(m.ID, err)
			return
		}
		j, _, err := ws.deps.Jobs.Submit(ctx, ws.p, job.SubmitParams{Operation: m.Operation, Input: m.Input, Priority: m.Priority,
			Delay: m.Delay, Header: ws.header})
		ws.reply(m.ID, err, func() any { return j })
	default:
		ws.fail(m.ID, errand.Errorf(errand.EINVALID, "unknown op %q: use subscribe, unsubscribe, publish, submit or ping", errand.Truncate(m.Op, 100)))
	}
}

func (ws *wsConn) reply(id string, err error, result func() any) {
	if err != nil {
		ws.fail(id, err)
		return
	}
	ws.send(map[string]any{"op": "ack", "id": id, "result": result()})
}

func (ws *wsConn) fail(id string, err error) {
	p := Problem(err)
	if p.Code == errand.EINTERNAL {
		ws.log.Error("websocket", "err", err)
	}
	if ws.denied != nil {
		ws.denied(err)
	}
	ws.send(map[string]any{"op": "error", "id": id, "error": p})
}

// send queues a control message; a client that lets 64 of them pile up is closed.
func (ws *wsConn) send(v any) {
	b, _ := json.Marshal(v)
	select {
	case ws.control <- b:
	default:
		ws.once.Do(func() { close(ws.closing) })
	}
}

func (ws *wsConn) subscribe(ctx context.Context, m *wsIn) {
	f, err := ws.follow(ctx, m)
	if err != nil {
		ws.fail(m.ID, err)
		return
	}
	ws.mu.Lock()
	if _, dup := ws.subs[m.ID]; dup || len(ws.subs) >= wsMaxSubs {
		ws.mu.Unlock()
		ws.fail(m.ID, errand.Errorf(errand.EINVALID, "subscription ids must be unique and a connection holds at most %d", wsMaxSubs))
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	sub := &wsSub{id: m.ID, cancel: cancel}
	ws.subs[m.ID] = sub
	ws.mu.Unlock()
	f.Send = ws.queue(sctx, sub, f)
	result := map[string]string{"subscribed": f.Stream, "after": errand.FormatCursor(f.After)}
	if f.Live {
		f.Listen() // before the ack: a client that has it misses nothing published after
		result["after"] = "live"
	}
	ws.send(map[string]any{"op": "ack", "id": m.ID, "result": result})
	go ws.run(sctx, sub, f)
}

// queue is the Send of sub's reader: it queues an event for the writer, or
// reports ErrSlow when the connection's queue is full, in events or in bytes
// (one event always fits in an empty queue).
//
// An event replayed from the store (history, or a catch-up) waits for room
// instead: nothing live waits on it, and a resume with a backlog larger than
// the queue would otherwise be reset at once, again and again.
func (ws *wsConn) queue(ctx context.Context, sub *wsSub, f *event.Follow) func(*event.Frame) error {
	return func(d *event.Frame) error {
		size := d.Bytes()
		full := func() bool { return len(ws.events) > 0 && ws.queued.Load()+size > ws.cfg.StreamBufferBytes }
		for f.Replaying() && (full() || len(ws.events) == cap(ws.events)) {
			select {
			case <-ws.room:
			case <-time.After(50 * time.Millisecond): // a room signal another subscription took
			case <-ctx.Done():
				return ctx.Err()
			case <-ws.closing:
				return event.ErrSlow
			}
		}
		if full() {
			return event.ErrSlow
		}
		select {
		case ws.events <- wsEvent{sub, d}:
			ws.queued.Add(size)
			return nil
		default:
			return event.ErrSlow
		}
	}
}

// follow validates a subscribe and returns its reader (Send not yet set).
func (ws *wsConn) follow(ctx context.Context, m *wsIn) (*event.Follow, error) {
	if m.ID == "" || len(m.ID) > 64 {
		return nil, errand.Errorf(errand.EINVALID, "a subscription needs an id of 1 to 64 bytes")
	}
	var after int64
	if m.After != nil {
		var err error
		if after, err = errand.ParseCursor(*m.After); err != nil {
			return nil, err
		}
	}
	f := ws.cfg.follow(ws.deps.Store, ws.deps.Hub, ws.p.Tenant, "", after)
	f.Buffer = sseBuffer
	switch {
	case (m.Channel == "") == (m.Job == ""):
		return nil, errand.Errorf(errand.EINVALID, "subscribe to a channel or a job, not both or neither")
	case m.Channel != "":
		if _, err := ws.deps.Channels.Subscribable(ws.p, m.Channel); err != nil {
			return nil, err
		}
		f.Stream = m.Channel
		switch {
		case m.Last != 0 && m.After != nil:
			return nil, errand.Errorf(errand.EINVALID, "give after or last, not both")
		case m.Last != 0:
			var err error
			if f.After, err = ws.deps.Channels.Tail(ctx, ws.p, m.Channel, m.Last); err != nil {
				return nil, err
			}
		case m.After == nil:
			f.Live = true // no cursor: what commits from now on
		}
	default:
		if _, err := ws.deps.Jobs.Get(ctx, ws.p, m.Job); err != nil {
			return nil, err
		}
		f.Stream, f.Until = m.Job, terminal
	}
	return f, nil
}

// run follows one subscription; falling behind ends it with a reset message.
func (ws *wsConn) run(ctx context.Context, sub *wsSub, f *event.Follow) {
	ws.meter.Subscriptions(transportWS, 1)
	defer ws.meter.Subscriptions(transportWS, -1)
	err := f.Run(ctx)
	if reason, resume, ok := resetFor(err); ok {
		ws.meter.StreamReset(transportWS)
		ws.drop(sub)
		ws.send(map[string]any{"op": "reset", "sub": sub.id, "reason": reason, "resume_after": errand.FormatCursor(resume)})
	} else if errors.Is(err, event.ErrSlow) {
		ws.meter.StreamReset(transportWS)
		ws.drop(sub)
		ws.send(map[string]any{"op": "reset", "sub": sub.id, "reason": "slow_consumer"})
	} else if err != nil && ctx.Err() == nil {
		ws.log.Warn("websocket subscription", "sub", sub.id, "err", err)
	}
}

func (ws *wsConn) unsubscribe(m *wsIn) {
	ws.mu.Lock()
	sub := ws.subs[m.ID]
	ws.mu.Unlock()
	if sub == nil {
		ws.fail(m.ID, errand.Errorf(errand.ENOTFOUND, "no subscription %q", errand.Truncate(m.ID, 100)))
		return
	}
	ws.drop(sub)
	ws.send(map[string]any{"op": "ack", "id": m.ID, "result": map[string]bool{"unsubscribed": true}})
}

func (ws *wsConn) drop(sub *wsSub) {
	sub.dead.Store(true)
	sub.cancel()
	ws.mu.Lock()
	if ws.subs[sub.id] == sub {
		delete(ws.subs, sub.id)
	}
	ws.mu.Unlock()
}

func (ws *wsConn) stopAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, s := range ws.subs {
		s.dead.Store(true)
		s.cancel()
	}
}

// write sends queued messages, control first; events of dead subscriptions are
// dropped. It also pings the client every wsPing.
func (ws *wsConn) write(ctx context.Context) {
	ping := time.NewTicker(wsPing)
	defer ping.Stop()
	for {
		var msg []byte
		select {
		case msg = <-ws.control:
		default:
			select {
			case <-ping.C:
				if !ws.ping(ctx) {
					return
				}
				continue
			case msg = <-ws.control:
			case e := <-ws.events:
				ws.queued.Add(-e.d.Bytes())
				select {
				case ws.room <- struct{}{}:
				default:
				}
				if e.sub.dead.Load() {
					continue
				}
				msg = eventMessage(e.sub.id, e.d)
			case <-ws.closing:
				ws.c.Close(websocket.StatusPolicyViolation, "too slow to read its answers")
				return
			case <-ctx.Done():
				return
			}
		}
		wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
		err := ws.c.Write(wctx, websocket.MessageText, msg)
		cancel()
		if err != nil {
			ws.c.CloseNow() // a client that takes no data for wsWriteTimeout is gone
			return
		}
	}
}

// eventMessage is {"op":"event","sub":…,"event":…}, reusing the event's JSON.
func eventMessage(sub string, d *event.Frame) []byte {
	id, _ := json.Marshal(sub)
	b := make([]byte, 0, len(d.JSON())+len(id)+32)
	b = append(b, `{"op":"event","sub":`...)
	b = append(b, id...)
	b = append(b, `,"event":`...)
	b = append(b, d.JSON()...)
	return append(b, '}')
}

// ping checks the client is there; Ping waits for the pong, which the reader
// goroutine receives, so it runs beside the writer loop for that moment only.
func (ws *wsConn) ping(ctx context.Context) bool {
	go func() {
		pctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
		defer cancel()
		if ws.c.Ping(pctx) != nil && ctx.Err() == nil {
			ws.c.CloseNow()
		}
	}()
	return true
}

// originPatterns turns CORS origins (https://app.example:8443) into the host
// patterns the WebSocket handshake checks.
func originPatterns(origins []string) []string {
	var out []string
	for _, o := range origins {
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			out = append(out, u.Host)
		} else {
			out = append(out, o) // "*" and bare hosts
		}
	}
	return out
}
