package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
	"github.com/errandhq/errand"
)

// Socket is one WebSocket connection to errand (sub-protocol errand.v1): it
// multiplexes subscriptions and lets the same connection publish and submit.
type Socket struct {
	c       *websocket.Conn
	next    atomic.Int64
	mu      sync.Mutex
	pending map[string]chan wsReply
	subs    map[string]chan SocketEvent
	done    chan struct{}
	err     error
}

// SocketEvent is an event of a subscription, or its reset (Reset true: the
// subscriber fell behind; subscribe again from the last ID you saw).
type SocketEvent struct {
	Event
	Reset bool
}

type wsReply struct {
	result json.RawMessage
	err    error
}

// Dial opens a WebSocket connection to the server.
func (c *Client) Dial(ctx context.Context) (*Socket, error) {
	h := http.Header{}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	u := "ws" + strings.TrimPrefix(c.base, "http") + "/v1/ws"
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{"errand.v1"}, HTTPHeader: h,
		HTTPClient: c.http})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(16 << 20)
	s := &Socket{c: conn, pending: map[string]chan wsReply{}, subs: map[string]chan SocketEvent{}, done: make(chan struct{})}
	go s.read()
	return s, nil
}

// Close ends the connection.
func (s *Socket) Close() error { return s.c.Close(websocket.StatusNormalClosure, "") }

func (s *Socket) read() {
	defer close(s.done)
	for {
		_, b, err := s.c.Read(context.Background())
		if err != nil {
			s.fail(err)
			return
		}
		var m struct {
			Op     string          `json:"op"`
			ID     string          `json:"id"`
			Sub    string          `json:"sub"`
			Result json.RawMessage `json:"result"`
			Event  Event           `json:"event"`
			Error  *errand.Problem `json:"error"`
		}
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		s.dispatch(m.Op, m.ID, m.Sub, m.Result, m.Event, m.Error)
	}
}

func (s *Socket) dispatch(op, id, sub string, result json.RawMessage, e Event, p *errand.Problem) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case "ack", "pong", "error":
		if ch := s.pending[id]; ch != nil {
			delete(s.pending, id)
			r := wsReply{result: result}
			if p != nil {
				r.err = &Error{Problem: *p, StatusCode: p.Status}
			}
			ch <- r
		}
	case "event":
		if ch := s.subs[sub]; ch != nil {
			ch <- SocketEvent{Event: e}
		}
	case "reset":
		if ch := s.subs[sub]; ch != nil {
			ch <- SocketEvent{Reset: true}
			close(ch)
			delete(s.subs, sub)
		}
	}
}

func (s *Socket) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
	for id, ch := range s.pending {
		ch <- wsReply{err: err}
		delete(s.pending, id)
	}
	for id, ch := range s.subs {
		close(ch)
		delete(s.subs, id)
	}
}

// call sends a message and waits for its answer.
func (s *Socket) call(ctx context.Context, msg map[string]any, sub chan SocketEvent) (json.RawMessage, error) {
	id := strconv.FormatInt(s.next.Add(1), 10)
	msg["id"] = id
	reply := make(chan wsReply, 1)
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return nil, s.err
	}
	s.pending[id] = reply
	if sub != nil {
		s.subs[id] = sub
	}
	s.mu.Unlock()
	b, _ := json.Marshal(msg)
	if err := s.c.Write(ctx, websocket.MessageText, b); err != nil {
		return nil, err
	}
	select {
	case r := <-reply:
		if r.err != nil && sub != nil {
			s.mu.Lock()
			delete(s.subs, id)
			s.mu.Unlock()
		}
		return r.result, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Subscribe follows a channel (or, with job set, a job) after a cursor. Events
// arrive on the returned channel, which is closed after a reset or when the
// connection ends. buffer should be large enough for bursts you read slowly.
func (s *Socket) Subscribe(ctx context.Context, channel, jobID, after string, buffer int) (<-chan SocketEvent, error) {
	ch := make(chan SocketEvent, max(buffer, 16))
	msg := map[string]any{"op": "subscribe", "after": after}
	if jobID != "" {
		msg["job"] = jobID
	} else {
		msg["channel"] = channel
	}
	_, err := s.call(ctx, msg, ch)
	return ch, err
}

// Publish sends an event to a channel and returns its cursor once it is committed.
func (s *Socket) Publish(ctx context.Context, channel, typ string, data any) (string, error) {
	res, err := s.call(ctx, map[string]any{"op": "publish", "channel": channel, "type": typ, "data": data}, nil)
	if err != nil {
		return "", err
	}
	var out struct{ ID string }
	if err := json.Unmarshal(res, &out); err != nil {
		return "", fmt.Errorf("publish answer: %w", err)
	}
	return out.ID, nil
}

// Submit creates a job over the socket.
func (s *Socket) Submit(ctx context.Context, operation string, input any) (*errand.Job, error) {
	res, err := s.call(ctx, map[string]any{"op": "submit", "operation": operation, "input": input}, nil)
	if err != nil {
		return nil, err
	}
	j := &errand.Job{}
	return j, json.Unmarshal(res, j)
}

// ErrClosed is returned by calls on a closed socket.
var ErrClosed = errors.New("errand: socket closed")
