package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/errandhq/errand"
)

// The GraphQL suite on the real binary: npm's graphql-ws, graphql-sse and a
// plain fetch; the same tenancy, permissions and audit as REST; the limits;
// a subscription that survives kill -9.

// gqlResult is a GraphQL response.
type gqlResult struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []gqlError                 `json:"errors"`
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (r gqlResult) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// gql POSTs a query to /v1/graphql as token and returns the status and the response.
func gql(t *testing.T, s *server, token, query string, vars map[string]any) (int, gqlResult) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	status, _, body := s.call("POST", "/v1/graphql", string(b), token, "Content-Type", "application/json",
		"Accept", "application/graphql-response+json")
	var r gqlResult
	mustJSON(t, body, &r)
	return status, r
}

// jsClient is a running graphql-ws.mjs: commands in, result lines out.
type jsClient struct {
	t    *testing.T
	in   io.WriteCloser
	out  <-chan string
	seen []string
}

func startGraphQLWS(t *testing.T, s *server, token string) *jsClient {
	t.Helper()
	cmd := node(t, "graphql-ws.mjs", "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/graphql", token)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	return &jsClient{t: t, in: in, out: lines(t, cmd)}
}

func (c *jsClient) send(cmd map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("graphql-ws client: %v", err)
	}
}

// wait returns the next line containing want (20 s at most).
func (c *jsClient) wait(want string) string {
	c.t.Helper()
	waitLine(c.t, c.out, want, &c.seen)
	return c.seen[len(c.seen)-1]
}

// events returns the types and ids of the events subscription id received, in order.
func (c *jsClient) events(id, field string) (types, ids []string) {
	for _, l := range c.seen {
		var m struct {
			ID   string
			Next struct {
				Data map[string]struct{ ID, Type string }
			}
		}
		if json.Unmarshal([]byte(l), &m) == nil && m.ID == id {
			if e, ok := m.Next.Data[field]; ok {
				types, ids = append(types, e.Type), append(ids, e.ID)
			}
		}
	}
	return types, ids
}

const jobEventsQuery = `subscription($id: ID!, $after: String) { jobEvents(id: $id, after: $after) { id type data } }`

// TestGraphQLJSClients: npm's graphql-ws submits a job and follows it from
// job.created to job.succeeded while a worker completes it over plain HTTP,
// then resumes after a cursor and gets exactly the rest; graphql-sse follows
// a channel (live: what was published before it connected is not replayed);
// a plain fetch POST reads the finished job.
func TestGraphQLJSClients(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, authzConfig(""), true)
	c := startGraphQLWS(t, s, bootA)
	c.send(map[string]any{"op": "execute", "id": "m1", "query": `mutation { submitJob(operation: "echo", input: {n: 1}, wait: 0) { id status } }`})
	var sub struct {
		Next struct {
			Data struct{ SubmitJob struct{ ID, Status string } }
		}
	}
	mustJSON(t, []byte(c.wait(`"id":"m1","next"`)), &sub)
	id := sub.Next.Data.SubmitJob.ID
	if sub.Next.Data.SubmitJob.Status != "QUEUED" || id == "" {
		t.Fatalf("submitJob answered %+v", sub)
	}
	c.send(map[string]any{"op": "subscribe", "id": "s1", "query": jobEventsQuery, "variables": map[string]any{"id": id}})
	c.wait(`"type":"job.created"`)

	_, leases := leaseAs(t, s, bootA, 1, "echo")
	if len(leases) != 1 {
		t.Fatalf("leased %d jobs", len(leases))
	}
	lease := leases[0].ID
	c.wait(`"type":"job.started"`)
	s.call("POST", "/v1/leases/"+lease+"/heartbeat", `{"progress":{"percent":50,"message":"half"}}`, bootA)
	c.wait(`"type":"job.progress"`)
	if st, _, b := s.call("POST", "/v1/leases/"+lease+"/complete", `{"result":{"ok":true}}`, bootA); st != 200 {
		t.Fatalf("complete: %d %s", st, b)
	}
	c.wait(`"type":"job.succeeded"`)
	c.wait(`"id":"s1","complete":true`)
	types, ids := c.events("s1", "jobEvents")
	if strings.Join(types, " ") != "job.created job.started job.progress job.succeeded" {
		t.Fatalf("jobEvents over graphql-ws: %v", types)
	}

	// Resumed after job.started: exactly the two events after it, then complete.
	c.send(map[string]any{"op": "subscribe", "id": "s2", "query": jobEventsQuery, "variables": map[string]any{"id": id, "after": ids[1]}})
	c.wait(`"id":"s2","complete":true`)
	if types, resumed := c.events("s2", "jobEvents"); strings.Join(types, " ") != "job.progress job.succeeded" ||
		strings.Join(resumed, ",") != strings.Join(ids[2:], ",") {
		t.Fatalf("resumed after %s: %v %v, want job.progress job.succeeded %v", ids[1], types, resumed, ids[2:])
	}

	// graphql-sse follows a channel live.
	s.call("POST", "/v1/channels/orders.eu/events", `{"type":"before","data":{}}`, bootA)
	sse := lines(t, node(t, "graphql-sse.mjs", s.URL+"/v1/graphql", bootA, "orders.eu", "3"))
	var seen []string
	waitLine(t, sse, `"connected":true`, &seen)
	for i := 1; i <= 3; i++ {
		if st, _, b := s.call("POST", "/v1/channels/orders.eu/events", fmt.Sprintf(`{"type":"order.created","data":{"n":%d}}`, i), bootA); st != 202 {
			t.Fatalf("publish: %d %s", st, b)
		}
	}
	waitLine(t, sse, `"done":true`, &seen)
	var got []string
	for _, l := range seen {
		var r struct {
			Data struct{ Channel struct{ Type, Stream string } }
		}
		if json.Unmarshal([]byte(l), &r) == nil && r.Data.Channel.Type != "" {
			got = append(got, r.Data.Channel.Stream+" "+r.Data.Channel.Type)
		}
	}
	if strings.Join(got, ",") != "orders.eu order.created,orders.eu order.created,orders.eu order.created" {
		t.Fatalf("graphql-sse saw %v (%v)", got, seen)
	}

	// A plain fetch POST reads the job.
	b, err := node(t, "graphql-fetch.mjs", s.URL+"/v1/graphql", bootA, `{ job(id: "`+id+`") { id status result attempt } }`).Output()
	if err != nil {
		t.Fatalf("fetch: %v %s", err, b)
	}
	var f struct {
		Status      int
		ContentType string
		Body        struct {
			Data struct {
				Job struct {
					ID, Status string
					Result     json.RawMessage
				}
			}
		}
	}
	mustJSON(t, b, &f)
	if f.Status != 200 || !strings.HasPrefix(f.ContentType, "application/graphql-response+json") ||
		f.Body.Data.Job.Status != "SUCCEEDED" || string(f.Body.Data.Job.Result) != `{"ok":true}` {
		t.Fatalf("fetch POST answered %s", b)
	}
}

// gqlDial opens a graphql-transport-ws connection and sends connection_init
// with payload.
func gqlDial(t *testing.T, s *server, payload any) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctxTimeout(t, 5*time.Second), "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	wsjson.Write(ctxTimeout(t, 5*time.Second), c, map[string]any{"type": "connection_init", "payload": payload})
	return c
}

type gqlMsg struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// gqlNext reads the next message (d at most).
func gqlNext(t *testing.T, c *websocket.Conn, d time.Duration) (gqlMsg, error) {
	t.Helper()
	var m gqlMsg
	err := wsjson.Read(ctxTimeout(t, d), c, &m)
	return m, err
}

// gqlClosed reads until the connection closes and returns its close code and reason.
func gqlClosed(t *testing.T, c *websocket.Conn, d time.Duration) (websocket.StatusCode, string) {
	t.Helper()
	for {
		if _, err := gqlNext(t, c, d); err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason
			}
			t.Fatalf("the connection ended with %v, not a close frame", err)
		}
	}
}

// TestGraphQLSecurity: the same principals, permissions, tenancy and audit
// as REST, and the limits against hostile documents.
func TestGraphQLSecurity(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, authzConfig(""), true)
	other := submitAs(t, s, bootB, "echo") // globex's job
	own := submitAs(t, s, bootA, "echo")

	// Another tenant's job is not found through job, jobs or jobEvents.
	status, r := gql(t, s, bootA, `query($id: ID!) { job(id: $id) { id } }`, map[string]any{"id": other.ID})
	if status != 200 || string(r.Data["job"]) != "null" || r.code() != errand.EJOBNOTFOUND {
		t.Errorf("job of another tenant: %d %+v, want null and job_not_found", status, r)
	}
	_, r = gql(t, s, bootA, `{ jobs(first: 100) { nodes { id } } }`, nil)
	if strings.Contains(string(r.Data["jobs"]), other.ID) || !strings.Contains(string(r.Data["jobs"]), own.ID) {
		t.Errorf("jobs lists %s; want %s and not %s", r.Data["jobs"], own.ID, other.ID)
	}
	c := gqlDial(t, s, map[string]any{"authorization": "Bearer " + bootA})
	if m, err := gqlNext(t, c, 5*time.Second); err != nil || m.Type != "connection_ack" {
		t.Fatalf("connection_init: %+v %v", m, err)
	}
	wsjson.Write(ctxTimeout(t, 5*time.Second), c, map[string]any{"id": "x", "type": "subscribe",
		"payload": map[string]any{"query": jobEventsQuery, "variables": map[string]any{"id": other.ID}}})
	m, err := gqlNext(t, c, 5*time.Second)
	if err != nil || m.Type != "next" || !strings.Contains(string(m.Payload), `"code":"job_not_found"`) {
		t.Errorf("jobEvents of another tenant: %+v %s %v, want job_not_found", m, m.Payload, err)
	}
	if m, _ := gqlNext(t, c, 5*time.Second); m.Type != "complete" {
		t.Errorf("after the error: %+v, want complete", m)
	}

	// A principal without jobs:submit:echo cannot submitJob.
	monthlyID, monthly := newKey(t, s, bootA, "monthly-only", "monthly")
	_, r = gql(t, s, monthly, `mutation { submitJob(operation: "echo") { id } }`, nil)
	if r.code() != errand.EFORBIDDEN {
		t.Errorf("submitJob without jobs:submit:echo: %+v, want forbidden", r)
	}
	checkAudit(t, s, []denial{{"boot-a", "jobs:read", other.ID, "denied"}, {monthlyID, "jobs:submit", "echo", "denied"}})

	// Hostile documents.
	deep := "{ jobs { nodes { " + strings.Repeat("events { nodes { job { ", 5) + "events { nodes { id } }" + strings.Repeat(" } } }", 5) + " } } }"
	status, r = gql(t, s, bootA, deep, nil)
	if status != 400 || r.code() != errand.EINVALID || r.Errors[0].Extensions["limit"] != "max_depth" || !strings.Contains(r.Errors[0].Message, "20 levels") {
		t.Errorf("a 20-level query: %d %+v, want 400 and a max_depth error saying 20 levels", status, r)
	}
	var aliases strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&aliases, "a%d: me { id } ", i)
	}
	status, r = gql(t, s, bootA, "{ "+aliases.String()+"}", nil)
	if status != 400 || r.Errors[0].Extensions["limit"] != "max_aliases" || !strings.Contains(r.Errors[0].Message, "1000 aliased") {
		t.Errorf("a 1,000-alias query: %d %+v, want 400 and a max_aliases error", status, r)
	}

	// connection_init without a valid credential is refused with 4403 (also
	// through npm's graphql-ws); a subscribe before connection_ack with 4401.
	for name, payload := range map[string]any{"no credential": nil, "a bad token": map[string]any{"authorization": "Bearer ek_nope"}} {
		if code, reason := gqlClosed(t, gqlDial(t, s, payload), 5*time.Second); code != 4403 || !strings.HasPrefix(reason, "Forbidden") {
			t.Errorf("connection_init with %s: closed %d %q, want 4403 Forbidden", name, code, reason)
		}
	}
	raw, _, err := websocket.Dial(ctxTimeout(t, 5*time.Second), "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	wsjson.Write(ctxTimeout(t, 5*time.Second), raw, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": "{ me { id } }"}})
	if code, _ := gqlClosed(t, raw, 5*time.Second); code != 4401 {
		t.Errorf("subscribe before connection_init: closed %d, want 4401", code)
	}
	js := startGraphQLWS(t, s, "ek_not_a_key")
	js.send(map[string]any{"op": "execute", "id": "q", "query": "{ me { id } }"})
	if l := js.wait(`"closed"`); !strings.Contains(l, `"code":4403`) {
		t.Errorf("graphql-ws with a bad token: %s, want close 4403", l)
	}

	// A subscription ends with its credential: 4401 saying why.
	keyID, key := newKey(t, s, bootA, "watcher", "reporter")
	w := gqlDial(t, s, map[string]any{"token": key})
	if m, err := gqlNext(t, w, 5*time.Second); err != nil || m.Type != "connection_ack" {
		t.Fatalf("connection_init with a key: %+v %v", m, err)
	}
	wsjson.Write(ctxTimeout(t, 5*time.Second), w, map[string]any{"id": "c", "type": "subscribe",
		"payload": map[string]any{"query": `subscription { channel(channel: "orders.eu") { id } }`}})
	time.Sleep(200 * time.Millisecond)
	if st, _, b := s.call("DELETE", "/v1/keys/"+keyID, "", bootA); st != 200 {
		t.Fatalf("revoke: %d %s", st, b)
	}
	if code, reason := gqlClosed(t, w, 10*time.Second); code != 4401 || !strings.Contains(reason, "revoked") {
		t.Errorf("a revoked key's subscription: closed %d %q, want 4401 saying revoked", code, reason)
	}
}

// TestGraphQLKillResume: a graphql-ws subscription to a job's events while
// errand is killed (SIGKILL) and restarted: the client subscribes again
// after the last event it saw and, in the end, has every event once, in order.
func TestGraphQLKillResume(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	s.keepPort()
	j := submit(t, s, "echo", nil)
	c := startGraphQLWS(t, s, "")
	c.send(map[string]any{"op": "follow", "id": "f", "field": "jobEvents", "query": jobEventsQuery, "variables": map[string]any{"id": j.ID}})
	c.wait(`"type":"job.created"`)
	var leased struct{ Leases []errand.Lease }
	_, _, b := s.do("POST", "/v1/leases", `{"operations":["echo"],"lease_seconds":120}`)
	mustJSON(t, b, &leased)
	lease := leased.Leases[0].ID
	s.do("POST", "/v1/leases/"+lease+"/heartbeat", `{"progress":{"percent":10,"message":"before"}}`)
	c.wait(`"type":"job.progress"`)

	s.kill()
	c.wait(`"dropped"`)
	s.start()
	for i := 2; i <= 4; i++ {
		s.do("POST", "/v1/leases/"+lease+"/heartbeat", fmt.Sprintf(`{"progress":{"percent":%d0,"message":"after"}}`, i))
	}
	s.do("POST", "/v1/leases/"+lease+"/complete", `{"result":{"ok":true}}`)
	c.wait(`"id":"f","complete":true`)

	evs, err := s.client().Events(ctxTimeout(t, 5*time.Second), j.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range evs.Events {
		want = append(want, e.ID+" "+e.Type)
	}
	types, ids := c.events("f", "jobEvents")
	var got []string
	for i := range ids {
		got = append(got, ids[i]+" "+types[i])
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || len(want) != 7 {
		t.Fatalf("graphql-ws saw %v\nthe log has %v\n(want all 7, once each, in order)", got, want)
	}
}

// TestGraphQLStreams: GraphQL's subscriptions count in the principal's stream
// limit (here 2: a WebSocket and one subscription on it), and a ticket in
// connection_init works once.
func TestGraphQLStreams(t *testing.T) {
	t.Parallel()
	s := startServerEnv(t, authzConfig(""), true, "ERRAND_HTTP__MAX_STREAMS_PER_PRINCIPAL=2")
	c := gqlDial(t, s, map[string]any{"authorization": "Bearer " + bootA})
	if m, err := gqlNext(t, c, 5*time.Second); err != nil || m.Type != "connection_ack" {
		t.Fatalf("connection_init: %+v %v", m, err)
	}
	sub := func(id string) {
		wsjson.Write(ctxTimeout(t, 5*time.Second), c, map[string]any{"id": id, "type": "subscribe",
			"payload": map[string]any{"query": `subscription { channel(channel: "orders.eu") { id } }`}})
	}
	sub("a")                           // the second slot
	time.Sleep(300 * time.Millisecond) // operations start concurrently: let a take it
	sub("b")                           // a third: refused
	if m, err := gqlNext(t, c, 5*time.Second); err != nil || m.ID != "b" || m.Type != "error" || !strings.Contains(string(m.Payload), "rate_limited") {
		t.Errorf("a subscription over the limit: %+v %s %v, want an error with rate_limited", m, m.Payload, err)
	}
	if code, reason := gqlClosed(t, gqlDial(t, s, map[string]any{"authorization": "Bearer " + bootA}), 5*time.Second); code != 1013 || !strings.Contains(reason, "too many") {
		t.Errorf("a connection over the limit: closed %d %q, want 1013", code, reason)
	}
	wsjson.Write(ctxTimeout(t, 5*time.Second), c, map[string]any{"id": "a", "type": "complete"})
	time.Sleep(200 * time.Millisecond) // the slot is given back
	sub("c")
	wsjson.Write(ctxTimeout(t, 5*time.Second), c, map[string]any{"id": "q", "type": "subscribe", "payload": map[string]any{"query": "{ me { tenant } }"}})
	if m, err := gqlNext(t, c, 5*time.Second); err != nil || m.ID != "q" || m.Type != "next" {
		t.Errorf("after a subscription completed, another runs and a query answers: %+v %v", m, err)
	}

	var tk struct{ Ticket string }
	_, _, b := s.call("POST", "/v1/tickets", "", bootB)
	mustJSON(t, b, &tk)
	w := gqlDial(t, s, map[string]any{"ticket": tk.Ticket})
	if m, err := gqlNext(t, w, 5*time.Second); err != nil || m.Type != "connection_ack" {
		t.Fatalf("connection_init with a ticket: %+v %v", m, err)
	}
	wsjson.Write(ctxTimeout(t, 5*time.Second), w, map[string]any{"id": "me", "type": "subscribe", "payload": map[string]any{"query": "{ me { tenant } }"}})
	if m, _ := gqlNext(t, w, 5*time.Second); !strings.Contains(string(m.Payload), `"tenant":"globex"`) {
		t.Errorf("a ticket's connection runs as its maker: %s", m.Payload)
	}
	if code, _ := gqlClosed(t, gqlDial(t, s, map[string]any{"ticket": tk.Ticket}), 5*time.Second); code != 4403 {
		t.Errorf("a ticket used twice: closed %d, want 4403", code)
	}
}
