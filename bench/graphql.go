package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// The WebSocket protocols a fan-out can be measured over.
const (
	ProtoErrand  = "errand.v1"            // GET /v1/ws
	ProtoGraphQL = "graphql-transport-ws" // GET /v1/graphql
)

// gqlChannelQuery subscribes to a channel after a cursor, selecting what an
// errand.v1 event carries.
const gqlChannelQuery = `subscription($channel: String!, $after: String) { channel(channel: $channel, after: $after) { id stream type time data } }`

// wsConn is a minimal WebSocket subscriber that counts event messages (cheap,
// so the load generator does not drown the server).
type wsConn struct {
	c       *websocket.Conn
	proto   string
	frames  atomic.Int64
	sample  bool
	latency []time.Duration
}

// dialSub connects over proto and subscribes to channel after a cursor (so
// nothing published once the call returns is missed, whenever the server
// starts following).
func dialSub(ctx context.Context, base, proto, channel, after string, i int) (*wsConn, error) {
	path := "/v1/ws"
	if proto == ProtoGraphQL {
		path = "/v1/graphql"
	}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+path, &websocket.DialOptions{Subprotocols: []string{proto}})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	w := &wsConn{c: c, proto: proto}
	var msgs []any
	if proto == ProtoGraphQL {
		vars := map[string]any{"channel": channel}
		if after != "" {
			vars["after"] = after
		}
		msgs = []any{map[string]any{"type": "connection_init"}, map[string]any{"id": "s", "type": "subscribe",
			"payload": map[string]any{"query": gqlChannelQuery, "variables": vars}}}
	} else {
		msgs = []any{map[string]any{"op": "subscribe", "id": fmt.Sprintf("s%d", i), "channel": channel, "after": after}}
	}
	for _, m := range msgs {
		b, _ := json.Marshal(m)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			c.CloseNow()
			return nil, err
		}
	}
	if _, _, err := c.Read(ctx); err != nil { // the ack (of the subscribe, or of connection_init)
		c.CloseNow()
		return nil, err
	}
	return w, nil
}

// read counts event messages until the connection ends.
func (w *wsConn) read(ctx context.Context) {
	marker := []byte(`"op":"event"`)
	if w.proto == ProtoGraphQL {
		marker = []byte(`"type":"next"`)
	}
	var buf bytes.Buffer
	for {
		_, r, err := w.c.Reader(ctx)
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := io.Copy(&buf, r); err != nil {
			return
		}
		b := buf.Bytes()
		if !bytes.Contains(b[:min(len(b), 64)], marker) {
			continue
		}
		w.frames.Add(1)
		if w.sample {
			if i := bytes.Index(b, []byte(`"t":`)); i >= 0 {
				j := i + 4
				for j < len(b) && b[j] >= '0' && b[j] <= '9' {
					j++
				}
				if t, err := strconv.ParseInt(string(b[i+4:j]), 10, 64); err == nil {
					w.latency = append(w.latency, time.Since(time.Unix(0, t)))
				}
			}
		}
	}
}

// WSFanout connects subs WebSocket subscribers (errand.v1 or
// graphql-transport-ws) to channel, publishes events and measures deliveries
// a second and publish-to-receive latency (on 100 of them).
func WSFanout(ctx context.Context, base, proto, channel string, subs, events, publishers int) (FanoutResult, error) {
	after, err := marker(ctx, base, channel)
	if err != nil {
		return FanoutResult{}, err
	}
	conns := make([]*wsConn, subs)
	sem, errs := make(chan struct{}, 64), make(chan error, subs)
	var wg sync.WaitGroup
	for i := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialSub(ctx, base, proto, channel, after, i)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.c.CloseNow()
			}
		}
	}()
	select {
	case err := <-errs:
		return FanoutResult{}, err
	default:
	}
	rctx, stop := context.WithCancel(ctx)
	var readers sync.WaitGroup
	for i, c := range conns {
		c.sample = i < 100
		readers.Add(1)
		go func() { defer readers.Done(); c.read(rctx) }()
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := publish(ctx, base, channel, events, publishers); err != nil {
		stop()
		return FanoutResult{}, err
	}
	want := int64(subs) * int64(events)
	var got int64
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got = wsTotal(conns); got >= want {
			break
		}
	}
	el := time.Since(start).Seconds()
	stop()
	for _, c := range conns {
		c.c.CloseNow()
	}
	readers.Wait()
	var lat []time.Duration
	for _, c := range conns {
		lat = append(lat, c.latency...)
	}
	r := FanoutResult{Name: fmt.Sprintf("fan-out to %d %s subscribers", subs, proto), Subscribers: subs, Events: events,
		Deliveries: got, Missing: want - got, Seconds: el, DeliveriesSec: float64(got) / el}
	r.P50ms, r.P99ms, _ = percentiles(lat)
	return r, nil
}

func wsTotal(conns []*wsConn) int64 {
	var n int64
	for _, c := range conns {
		n += c.frames.Load()
	}
	return n
}

// marker publishes one event and returns its cursor: subscribers start after it.
func marker(ctx context.Context, base, channel string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/channels/"+channel+"/events", strings.NewReader(`{"type":"marker"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("publish a marker: %d %v", resp.StatusCode, err)
	}
	return out.ID, nil
}

// JobQuery is the GraphQL query a job-read benchmark sends: the fields GET
// /v1/jobs/{id} answers.
const JobQuery = `query($id: ID!) { job(id: $id) { id operation status input result error { code title detail } ` +
	`progress { percent message } attempt maxAttempts priority timeoutSeconds cancelRequested createdAt runAt ` +
	`startedAt finishedAt artifacts { name url } } }`

// JobReads are the two loads of a read benchmark: GET /v1/jobs/{id} and the
// same job through POST /v1/graphql.
func JobReads(base, id string, concurrency int, d time.Duration) (rest, gql Load) {
	body, _ := json.Marshal(map[string]any{"query": JobQuery, "variables": map[string]any{"id": id}})
	rest = Load{Name: "GET /v1/jobs/{id}", Method: http.MethodGet, URL: base + "/v1/jobs/" + id, Concurrency: concurrency,
		Duration: d, WantStatus: http.StatusOK}
	gql = Load{Name: "POST /v1/graphql job(id)", URL: base + "/v1/graphql", Body: body, Concurrency: concurrency, Duration: d,
		WantStatus: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}}
	return rest, gql
}
