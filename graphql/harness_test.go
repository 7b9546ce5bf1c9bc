package graphql_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/errandhq/errand"
	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/graphql"
	"github.com/errandhq/errand/httpapi"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/netguard"
	"github.com/errandhq/errand/queue"
	"github.com/errandhq/errand/storage/sqlite"
	"github.com/errandhq/errand/webhook"
)

// api is errand's HTTP API with GraphQL, in development mode, on a SQLite
// file of the test's, served over loopback.
type api struct {
	t        testing.TB
	URL      string
	store    *sqlite.Store
	channels *channel.Service
}

func newAPI(t testing.TB, cfg *graphql.Config) *api {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "e.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	hub, sig := event.NewHub(), queue.NewSignal()
	store.Listen(hub)
	store.Listen(sig)
	ops := []errand.Operation{{Name: "echo"}, {Name: "strict", InputSchema: json.RawMessage(`{"type":"object","required":["type"]}`)}}
	jobs := must(job.NewService(store, hub, ops, nil))
	q := must(queue.New(store, sig, ops, nil))
	chans := must(channel.NewService(store, []errand.Channel{{Pattern: "orders.*", History: time.Hour}}, nil))
	hooks := must(webhook.New(store, &webhook.Config{Guard: must(netguard.New([]string{"127.0.0.0/8"})), Log: slog.New(slog.DiscardHandler)}))
	store.Hook(hooks)
	gql := must(graphql.New(graphql.Deps{Jobs: jobs, Channels: chans, Webhooks: hooks, Store: store, Hub: hub}, cfg))
	streams, stop := context.WithCancel(ctx)
	h := must(httpapi.NewServer(httpapi.Deps{Log: slog.New(slog.DiscardHandler), Jobs: jobs, Queue: q, Channels: chans, Hub: hub, Store: store, GraphQL: gql, Webhooks: hooks,
		Streams: streams}, &httpapi.Config{Dev: true}))
	srv := httptest.NewServer(h)
	t.Cleanup(func() { stop(); srv.Close(); store.Close() })
	return &api{t: t, URL: srv.URL, store: store, channels: chans}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// post sends a GraphQL request and returns the answer's status, content type and body.
func (a *api) post(body, accept string, header ...string) (int, string, []byte) {
	a.t.Helper()
	return a.send("POST", "", body, accept, append([]string{"Content-Type", "application/json"}, header...)...)
}

func (a *api) send(method, query, body, accept string, header ...string) (int, string, []byte) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.URL+"/v1/graphql"+query, strings.NewReader(body))
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// query POSTs a query (variables may be nil) and decodes the answer.
func (a *api) query(q string, vars map[string]any) result {
	a.t.Helper()
	b, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	_, _, body := a.post(string(b), "")
	var r result
	if err := json.Unmarshal(body, &r); err != nil {
		a.t.Fatalf("%s: %v", body, err)
	}
	return r
}

// publish publishes n events to a channel and returns their cursors.
func (a *api) publish(name string, n int, data string) []string {
	a.t.Helper()
	var out []string
	for range n {
		e, err := a.channels.Publish(context.Background(), errand.DevPrincipal, name, "tick", json.RawMessage(data))
		if err != nil {
			a.t.Fatal(err)
		}
		out = append(out, e.Cursor())
	}
	return out
}

type result struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func (r result) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// wsClient speaks graphql-transport-ws.
type wsClient struct {
	t testing.TB
	c *websocket.Conn
}

type msg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dial connects with sub-protocols (graphql-transport-ws when none).
func (a *api) dial(protocols ...string) *wsClient {
	a.t.Helper()
	if protocols == nil {
		protocols = []string{"graphql-transport-ws"}
	}
	return a.dialPath("/v1/graphql", protocols...)
}

func (a *api) dialPath(path string, protocols ...string) *wsClient {
	a.t.Helper()
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(a.URL, "http")+path,
		&websocket.DialOptions{Subprotocols: protocols})
	if err != nil {
		a.t.Fatal(err)
	}
	c.SetReadLimit(1 << 24)
	a.t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: a.t, c: c}
}

// connect dials and initialises a connection.
func (a *api) connect() *wsClient {
	a.t.Helper()
	w := a.dial()
	w.send(msg{Type: "connection_init"})
	if m := w.read(); m.Type != "connection_ack" {
		a.t.Fatalf("connection_init answered %+v", m)
	}
	return w
}

func (w *wsClient) send(m any) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := wsjson.Write(ctx, w.c, m); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsClient) subscribe(id, query string, vars map[string]any) {
	w.t.Helper()
	p, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	w.send(msg{ID: id, Type: "subscribe", Payload: p})
}

// read returns the next message (10 s at most).
func (w *wsClient) read() msg {
	w.t.Helper()
	m, err := w.next(10 * time.Second)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return m
}

func (w *wsClient) next(d time.Duration) (msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var m msg
	err := wsjson.Read(ctx, w.c, &m)
	return m, err
}

// closed reads until the connection closes and returns its code and reason.
func (w *wsClient) closed() (websocket.StatusCode, string) {
	w.t.Helper()
	for {
		if _, err := w.next(15 * time.Second); err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason
			}
			w.t.Fatalf("ended with %v, not a close frame", err)
		}
	}
}
