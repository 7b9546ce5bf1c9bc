package graphql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/coder/websocket"
	"github.com/errandhq/errand"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/httpapi"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// The graphql-transport-ws protocol (github.com/enisdenjo/graphql-ws, PROTOCOL.md).
const (
	wsProtocol     = "graphql-transport-ws"
	wsEventQueue   = 128 // results waiting to be written, per connection
	wsControlQueue = 64  // acks, pongs and errors waiting
	wsPing         = 20 * time.Second
	wsWriteTimeout = 10 * time.Second
	wsInitTimeout  = 10 * time.Second
)

// Close codes of graphql-transport-ws.
const (
	closeBadRequest     websocket.StatusCode = 4400 // an invalid message
	closeUnauthorized   websocket.StatusCode = 4401 // subscribe before connection_ack; the credential ended
	closeForbidden      websocket.StatusCode = 4403 // connection_init without a valid credential
	closeProtocol       websocket.StatusCode = 4406 // the sub-protocol is not graphql-transport-ws
	closeInitTimeout    websocket.StatusCode = 4408 // no connection_init in time
	closeDuplicateID    websocket.StatusCode = 4409 // a subscribe reusing an active id
	closeTooManyInits   websocket.StatusCode = 4429 // a second connection_init
	closeTryAgainLater  websocket.StatusCode = 1013 // the principal's stream limit is reached
	closeInternalServer websocket.StatusCode = 4500
)

// wsMessage is a message of the protocol, either way.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsConn is one client connection.
type wsConn struct {
	s       *Server
	a       httpapi.Access
	c       *websocket.Conn
	r       *http.Request // the upgrade request: the audit log's details
	who     caller        // set by connection_init
	control chan *wsOut   // pointers: a queue's empty slots cost 8 bytes each
	events  chan *wsOut
	mu      sync.Mutex
	subs    map[string]*wsSub
	closing chan struct{}
	once    sync.Once
	ended   atomic.Bool // closed with a reason of its own (credential ended, protocol error)
}

// wsOut is a message waiting to be written: b, or what render makes at write
// time (a reset's error says the last cursor the client was sent).
type wsOut struct {
	sub    *wsSub
	b      []byte
	cursor int64
	render func() []byte
}

// wsSub is one operation on the connection.
type wsSub struct {
	id     string
	cancel context.CancelFunc
	dead   atomic.Bool
	// sent is the cursor of the last event written to the client (or, before
	// any, the cursor the subscription started after); -1 until known.
	sent atomic.Int64
}

// serveWS upgrades r and runs the connection. Browsers may connect from the
// CORS origins only (cross-site WebSocket hijacking).
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, a httpapi.Access) {
	var pre *errand.Principal // a credential on the upgrade request itself
	if r.Header.Get("Authorization") != "" {
		p, err := a.Authenticate(r, false)
		if err != nil {
			s.writeHTTPError(w, r, err, false, 0)
			return
		}
		pre = &p
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wsProtocol}, OriginPatterns: a.Origins()})
	if err != nil {
		return // Accept has answered the client
	}
	if c.Subprotocol() != wsProtocol {
		c.Close(closeProtocol, "Subprotocol not acceptable: use "+wsProtocol)
		return
	}
	c.SetReadLimit(int64(s.cfg.MaxDocumentBytes) + 64<<10)
	ws := &wsConn{s: s, a: a, c: c, r: r, control: make(chan *wsOut, wsControlQueue), events: make(chan *wsOut, wsEventQueue),
		subs: map[string]*wsSub{}, closing: make(chan struct{})}
	if a.Streams() == nil {
		ws.serve(r.Context(), pre)
		return
	}
	// The connection is taken over from net/http: run it on a goroutine of
	// its own so the handler returns and net/http frees what it held.
	go ws.serve(a.Streams(), pre)
}

// serve waits for connection_init, then runs the connection: a reader (this
// goroutine), a writer, and one goroutine per operation. It ends with ctx
// (1001), or when the principal's credential ends (4401 with the reason).
func (ws *wsConn) serve(ctx context.Context, pre *errand.Principal) {
	release, ok := ws.init(ctx, pre)
	if !ok {
		return
	}
	defer release()
	bound, unbind := ws.a.Bind(ctx, ws.who.p)
	defer unbind()
	ops, cancel := context.WithCancel(bound) // the operations end with the credential
	defer cancel()
	// Reads and writes do not: coder/websocket drops a connection without a
	// close frame when a read's or a write's context ends, and the client
	// must be told 4401 first. They end once that close is done.
	rw, endRW := context.WithCancel(ctx)
	defer endRW()
	stop := context.AfterFunc(bound, func() {
		if e := credentialEnded(bound); e != nil {
			ws.close(closeUnauthorized, "Unauthorized: "+e.Message)
		}
		endRW()
	})
	defer stop()
	go ws.write(rw)
	ws.sendControl(wsMessage{Type: "connection_ack"})
	err := ws.read(rw, ops)
	ws.stopAll()
	switch {
	case ws.ended.Load():
	case ctx.Err() != nil:
		ws.c.Close(websocket.StatusGoingAway, "errand is shutting down")
	case websocket.CloseStatus(err) == -1 && !errors.Is(err, context.Canceled):
		ws.c.Close(websocket.StatusPolicyViolation, errand.Truncate(err.Error(), 100))
	}
}

// credentialEnded is why ctx (from Bind) ended when the credential did, or nil.
func credentialEnded(ctx context.Context) *errand.Error {
	var e *errand.Error
	if ctx.Err() != nil && errors.As(context.Cause(ctx), &e) && e.Code == errand.EUNAUTHORIZED {
		return e
	}
	return nil
}

// close ends the connection with a code and reason of its own.
func (ws *wsConn) close(code websocket.StatusCode, reason string) {
	ws.ended.Store(true)
	ws.c.Close(code, errand.Truncate(reason, 120))
}

// init reads messages until connection_init, authenticates its payload and
// takes the connection's stream slot. Pings are answered meanwhile; anything
// else closes the connection as the protocol says.
func (ws *wsConn) init(ctx context.Context, pre *errand.Principal) (release func(), ok bool) {
	ictx, cancel := context.WithTimeout(ctx, wsInitTimeout)
	defer cancel()
	for {
		m, err := ws.readMessage(ictx)
		switch {
		case err != nil && ictx.Err() != nil && ctx.Err() == nil:
			ws.close(closeInitTimeout, "Connection initialisation timeout")
			return nil, false
		case err != nil:
			ws.c.CloseNow()
			return nil, false
		case m.Type == "ping":
			ws.writeNow(ictx, wsMessage{Type: "pong", Payload: m.Payload})
		case m.Type == "pong":
		case m.Type == "subscribe":
			ws.close(closeUnauthorized, "Unauthorized")
			return nil, false
		case m.Type != "connection_init":
			ws.close(closeBadRequest, fmt.Sprintf("Invalid message received: %s before connection_init", errand.Truncate(m.Type, 40)))
			return nil, false
		default:
			return ws.accept(ctx, m.Payload, pre)
		}
	}
}

// initPayload is what connection_init may carry: a bearer token (as
// "authorization", with or without "Bearer ", or as "token") or a ticket.
type initPayload struct {
	Authorization  string `json:"authorization"`
	Authorization2 string `json:"Authorization"`
	Token          string `json:"token"`
	Ticket         string `json:"ticket"`
}

// accept authenticates connection_init's payload: 4403 without a valid
// credential, 1013 over the principal's stream limit.
func (ws *wsConn) accept(ctx context.Context, raw json.RawMessage, pre *errand.Principal) (func(), bool) {
	var in initPayload
	if len(raw) > 0 && string(raw) != "null" && json.Unmarshal(raw, &in) != nil {
		ws.close(closeBadRequest, "Invalid message received: connection_init's payload must be an object")
		return nil, false
	}
	token := firstOf(in.Authorization, in.Authorization2, in.Token)
	var p errand.Principal
	var err error
	if token == "" && in.Ticket == "" && pre != nil {
		p = *pre
	} else {
		p, err = ws.a.Credential(ctx, ws.r, token, in.Ticket)
	}
	if err != nil {
		ws.close(closeForbidden, "Forbidden: "+errand.ErrorMessage(err))
		return nil, false
	}
	free, err := ws.a.OpenStream(p)
	if err != nil {
		ws.close(closeTryAgainLater, errand.ErrorMessage(err))
		return nil, false
	}
	ws.who = caller{p: p, r: ws.r, a: ws.a}
	m := ws.a.Meter()
	m.StreamOpened(transportWS)
	return func() { free(); m.StreamClosed(transportWS) }, true
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func (ws *wsConn) readMessage(ctx context.Context) (*wsMessage, error) {
	typ, b, err := ws.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	var m wsMessage
	if typ != websocket.MessageText || json.Unmarshal(b, &m) != nil || m.Type == "" {
		return &wsMessage{Type: "invalid"}, nil
	}
	return &m, nil
}

// read handles messages after connection_ack until the connection ends;
// the operations it starts run under ops.
func (ws *wsConn) read(ctx, ops context.Context) error {
	for {
		m, err := ws.readMessage(ctx)
		if err != nil {
			return err
		}
		switch m.Type {
		case "ping":
			ws.sendControl(wsMessage{Type: "pong", Payload: m.Payload})
		case "pong":
		case "subscribe":
			if !ws.subscribe(ops, m) {
				return nil
			}
		case "complete":
			ws.complete(m.ID)
		case "connection_init":
			ws.close(closeTooManyInits, "Too many initialisation requests")
			return nil
		default:
			ws.close(closeBadRequest, "Invalid message received: "+errand.Truncate(m.Type, 40))
			return nil
		}
	}
}

// subscribe starts an operation; false when it closed the connection (an id
// in use).
func (ws *wsConn) subscribe(ctx context.Context, m *wsMessage) bool {
	if m.ID == "" || len(m.ID) > 128 {
		ws.close(closeBadRequest, "Invalid message received: subscribe needs an id of 1 to 128 bytes")
		return false
	}
	ws.mu.Lock()
	if _, dup := ws.subs[m.ID]; dup {
		ws.mu.Unlock()
		ws.close(closeDuplicateID, "Subscriber for "+errand.Truncate(m.ID, 64)+" already exists")
		return false
	}
	if len(ws.subs) >= ws.s.cfg.MaxSubscriptions {
		ws.mu.Unlock()
		ws.sendError(m.ID, &gqlerror.Error{Message: fmt.Sprintf("a connection holds at most %d operations at once (graphql.max_subscriptions_per_connection)", ws.s.cfg.MaxSubscriptions),
			Extensions: map[string]any{"code": errand.ERATELIMITED}})
		return true
	}
	sctx, cancel := context.WithCancel(ctx)
	sub := &wsSub{id: m.ID, cancel: cancel}
	sub.sent.Store(-1)
	ws.subs[m.ID] = sub
	ws.mu.Unlock()
	go ws.operate(sctx, sub, m.Payload)
	return true
}

// operate runs one operation: request errors are an error message; results
// are next messages, then complete (or an error when a subscription ended
// early: fell behind, cursor too old).
func (ws *wsConn) operate(ctx context.Context, sub *wsSub, raw json.RawMessage) {
	defer ws.drop(sub)
	c := ws.who // each operation its own caller (its source)
	var op *graphql.OperationContext
	var resp *graphql.Response
	var err error
	offStack(func() {
		var params graphql.RawParams
		if err = decodeParams(raw, &params); err == nil {
			op, resp = ws.s.prepare(ctx, &c, &params)
		}
	})
	if err != nil {
		ws.sendError(sub.id, &gqlerror.Error{Message: errand.ErrorMessage(err), Extensions: map[string]any{"code": errand.ErrorCode(err)}})
		return
	}
	if resp != nil {
		ws.sendError(sub.id, resp.Errors...)
		return
	}
	if op.Operation.Operation == ast.Subscription {
		release, err := ws.a.OpenStream(c.p)
		if err != nil {
			ws.sendError(sub.id, endError(err, false, 0))
			return
		}
		defer release()
		ws.a.Meter().Subscriptions(transportWS, 1)
		defer ws.a.Meter().Subscriptions(transportWS, -1)
	}
	err = ws.s.run(ctx, &c, op, &wsResults{ws: ws, sub: sub, ctx: ctx})
	switch {
	case ctx.Err() != nil && !errors.Is(err, event.ErrSlow):
		// completed by the client, or the connection is closing
	case err != nil:
		if !errors.Is(err, event.ErrSlow) && !isCursorTooOld(err) {
			ws.s.cfg.Log.Warn("graphql subscription ended", "id", sub.id, "err", err)
		}
		resumable := c.src != nil && c.src.resumable
		sub.dead.Store(true) // what it still has queued is dropped: the error says where to resume
		ws.queueControl(&wsOut{render: func() []byte {
			return mustJSON(wsMessage{ID: sub.id, Type: "error", Payload: mustJSON(gqlerror.List{endError(err, resumable, sub.sent.Load())})})
		}})
	default:
		ws.sendEvent(ctx, sub, mustJSON(wsMessage{ID: sub.id, Type: "complete"}), 0, true)
	}
}

// isCursorTooOld reports whether err is a cursor the log cannot resume
// from (older than what is kept, or beyond its head): the client's to fix.
func isCursorTooOld(err error) bool {
	var old *event.CursorTooOld
	var ahead *event.CursorAhead
	return errors.As(err, &old) || errors.As(err, &ahead)
}

// wsResults queues an operation's results as next messages.
type wsResults struct {
	ws  *wsConn
	sub *wsSub
	ctx context.Context
}

func (o *wsResults) next(payload []byte, cursor, prev int64, wait bool) error {
	if o.sub.sent.Load() < 0 && cursor > 0 {
		o.sub.sent.Store(prev) // nothing sent yet: a resume starts where the subscription did
	}
	b := make([]byte, 0, len(payload)+len(o.sub.id)+40)
	b = append(b, `{"id":`...)
	b = appendString(b, o.sub.id)
	b = append(b, `,"type":"next","payload":`...)
	b = append(append(b, payload...), '}')
	// A live event is not kept when the queue is full: the subscriber is told
	// to resume; what waits in the store (a replay) and a query's result wait.
	if !o.ws.sendEvent(o.ctx, o.sub, b, cursor, wait) {
		if o.ctx.Err() != nil {
			return o.ctx.Err()
		}
		return event.ErrSlow
	}
	return nil
}

func (o *wsResults) flush() error { return nil }

// sendEvent queues an operation's message behind its earlier ones; wait
// blocks until there is room (or ctx ends), else a full queue reports false.
func (ws *wsConn) sendEvent(ctx context.Context, sub *wsSub, b []byte, cursor int64, wait bool) bool {
	out := &wsOut{sub: sub, b: b, cursor: cursor}
	if !wait {
		select {
		case ws.events <- out:
			return true
		default:
			return false
		}
	}
	select {
	case ws.events <- out:
		return true
	case <-ctx.Done():
		return false
	case <-ws.closing:
		return false
	}
}

func (ws *wsConn) sendError(id string, errs ...*gqlerror.Error) {
	ws.sendControl(wsMessage{ID: id, Type: "error", Payload: mustJSON(gqlerror.List(errs))})
}

func (ws *wsConn) sendControl(m wsMessage) { ws.queueControl(&wsOut{b: mustJSON(m)}) }

// queueControl queues a control message; a client that lets 64 of them pile
// up is closed.
func (ws *wsConn) queueControl(o *wsOut) {
	select {
	case ws.control <- o:
	default:
		ws.once.Do(func() { close(ws.closing) })
	}
}

// complete ends an operation the client completed (no message back).
func (ws *wsConn) complete(id string) {
	ws.mu.Lock()
	sub := ws.subs[id]
	ws.mu.Unlock()
	if sub != nil {
		sub.dead.Store(true)
		sub.cancel()
	}
}

func (ws *wsConn) drop(sub *wsSub) {
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

// write sends queued messages, control first; messages of dead operations
// are dropped. It pings the client every wsPing.
func (ws *wsConn) write(ctx context.Context) {
	ping := time.NewTicker(wsPing)
	defer ping.Stop()
	for {
		var o *wsOut
		select {
		case o = <-ws.control:
		default:
			select {
			case <-ping.C:
				ws.ping(ctx)
				continue
			case o = <-ws.control:
			case o = <-ws.events:
				if o.sub.dead.Load() {
					continue
				}
			case <-ws.closing:
				ws.close(websocket.StatusPolicyViolation, "too slow to read its answers")
				return
			case <-ctx.Done():
				return
			}
		}
		if !ws.writeOut(ctx, o) {
			return
		}
	}
}

func (ws *wsConn) writeOut(ctx context.Context, o *wsOut) bool {
	b := o.b
	if o.render != nil {
		b = o.render()
	}
	wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
	err := ws.c.Write(wctx, websocket.MessageText, b)
	cancel()
	if err != nil {
		ws.c.CloseNow() // a client that takes no data for wsWriteTimeout is gone
		return false
	}
	if o.cursor > 0 {
		o.sub.sent.Store(o.cursor)
	}
	return true
}

// writeNow writes a message before the writer runs (during init).
func (ws *wsConn) writeNow(ctx context.Context, m wsMessage) {
	wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
	defer cancel()
	_ = ws.c.Write(wctx, websocket.MessageText, mustJSON(m))
}

// ping checks the client is there; Ping waits for the pong, which the reader
// receives, so it runs beside the writer for that moment only.
func (ws *wsConn) ping(ctx context.Context) {
	go func() {
		pctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
		defer cancel()
		if ws.c.Ping(pctx) != nil && ctx.Err() == nil {
			ws.c.CloseNow()
		}
	}()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own message types are marshalled
	}
	return b
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
