package graphql_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// TestWSProtocol: graphql-transport-ws as its PROTOCOL.md says: the close
// codes, ping/pong, queries and request errors over the socket.
func TestWSProtocol(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)

	w := a.connect()
	w.send(msg{Type: "ping", Payload: json.RawMessage(`{"k":1}`)})
	if m := w.read(); m.Type != "pong" || string(m.Payload) != `{"k":1}` {
		t.Errorf("ping answered %+v, want pong with the payload", m)
	}
	w.subscribe("q", `{ me { id tenant } }`, nil)
	if m := w.read(); m.Type != "next" || m.ID != "q" || string(m.Payload) != `{"data":{"me":{"id":"dev","tenant":"default"}}}` {
		t.Errorf("a query over the socket: %+v %s", m, m.Payload)
	}
	if m := w.read(); m.Type != "complete" || m.ID != "q" {
		t.Errorf("after the query's result: %+v, want complete", m)
	}
	w.subscribe("bad", `{ nope }`, nil)
	if m := w.read(); m.Type != "error" || m.ID != "bad" || !strings.Contains(string(m.Payload), `"code":"invalid_request"`) {
		t.Errorf("a document that does not validate: %+v %s, want an error message", m, m.Payload)
	}
	w.subscribe("s", `subscription { channel(channel: "orders.eu") { id } }`, nil)
	w.subscribe("s", `subscription { channel(channel: "orders.eu") { id } }`, nil)
	if code, _ := w.closed(); code != 4409 {
		t.Errorf("a subscribe reusing an active id: closed %d, want 4409", code)
	}

	for _, c := range []struct {
		name  string
		first msg
		code  int
	}{
		{"subscribe before connection_init", msg{ID: "1", Type: "subscribe", Payload: json.RawMessage(`{"query":"{ me { id } }"}`)}, 4401},
		{"not a message", msg{Type: "hello"}, 4400},
	} {
		w := a.dial()
		w.send(c.first)
		if code, _ := w.closed(); int(code) != c.code {
			t.Errorf("%s: closed %d, want %d", c.name, code, c.code)
		}
	}
	w = a.connect()
	w.send(msg{Type: "connection_init"})
	if code, _ := w.closed(); code != 4429 {
		t.Errorf("a second connection_init: closed %d, want 4429", code)
	}
	w = a.dial("graphql-ws") // the legacy protocol
	if code, _ := w.closed(); code != 4406 {
		t.Errorf("another sub-protocol: closed %d, want 4406", code)
	}
}

// events reads next messages of subscription id until n arrived or another
// message came; it returns their cursors and the message that ended it.
func (w *wsClient) events(id string, n int) ([]string, msg) {
	w.t.Helper()
	var out []string
	for len(out) < n {
		m := w.read()
		if m.ID != id || m.Type != "next" {
			return out, m
		}
		var r struct {
			Data map[string]struct{ ID string }
		}
		json.Unmarshal(m.Payload, &r)
		for _, e := range r.Data {
			out = append(out, e.ID)
		}
	}
	return out, msg{}
}

// TestChannelSubscriptions: without a cursor a channel subscription is live
// (what was published before is not replayed); after: "0" replays what is
// kept, then goes live; after a cursor, exactly what follows it.
func TestChannelSubscriptions(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	before := a.publish("orders.eu", 3, `{}`)
	a.publish("orders.us", 2, `{}`) // another channel of the same pattern
	w := a.connect()
	const q = `subscription($after: String) { channel(channel: "orders.eu", after: $after) { id } }`
	w.subscribe("live", q, nil)
	w.subscribe("all", q, map[string]any{"after": "0"})
	w.subscribe("tail", q, map[string]any{"after": before[1]})
	got := map[string][]string{}
	// Subscriptions start in any order: read until each has what it replays,
	// then publish and read the live part.
	deadline := time.Now().Add(10 * time.Second)
	for (len(got["all"]) < 3 || len(got["tail"]) < 1) && time.Now().Before(deadline) {
		m := w.read()
		var r struct {
			Data map[string]struct{ ID string }
		}
		json.Unmarshal(m.Payload, &r)
		got[m.ID] = append(got[m.ID], r.Data["channel"].ID)
	}
	time.Sleep(100 * time.Millisecond) // the live subscription follows the log by now
	after := a.publish("orders.eu", 2, `{}`)
	for len(got["all"]) < 5 || len(got["tail"]) < 3 || len(got["live"]) < 2 {
		m := w.read()
		var r struct {
			Data map[string]struct{ ID string }
		}
		json.Unmarshal(m.Payload, &r)
		got[m.ID] = append(got[m.ID], r.Data["channel"].ID)
	}
	want := map[string][]string{"live": after, "all": append(append([]string{}, before...), after...),
		"tail": append([]string{before[2]}, after...)}
	for id, w := range want {
		if strings.Join(got[id], ",") != strings.Join(w, ",") {
			t.Errorf("%s: got %v, want %v", id, got[id], w)
		}
	}
}

// TestSlowSubscriber: a subscriber that stops reading gets an error saying
// where to resume (the last event it was sent); resumed there it gets the
// rest: every event once, none lost, none repeated.
func TestSlowSubscriber(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	w := a.connect()
	const q = `subscription($after: String) { channel(channel: "orders.slow", after: $after) { id data } }`
	w.subscribe("s", q, map[string]any{"after": "0"})
	time.Sleep(100 * time.Millisecond)
	big := `{"pad":"` + strings.Repeat("x", 16<<10) + `"}`
	want := a.publish("orders.slow", 2000, big) // ~32 MB: more than the socket and the queue hold
	var got []string
	var end msg
	for {
		ids, m := w.events("s", len(want))
		got = append(got, ids...)
		if m.Type != "" {
			end = m
			break
		}
		if len(got) >= len(want) {
			t.Fatalf("the subscriber that stopped reading got every event: the test did not fill its queue")
		}
	}
	var errs []struct {
		Message    string
		Extensions struct{ Code, ResumeAfter string }
	}
	json.Unmarshal(end.Payload, &errs)
	if end.Type != "error" || len(errs) != 1 || errs[0].Extensions.Code != "slow_consumer" || errs[0].Extensions.ResumeAfter != got[len(got)-1] {
		t.Fatalf("after %d events: %+v %s, want an error with code slow_consumer and resumeAfter %s", len(got), end, end.Payload, got[len(got)-1])
	}
	w.subscribe("s", q, map[string]any{"after": errs[0].Extensions.ResumeAfter})
	rest, m := w.events("s", len(want)-len(got))
	got = append(got, rest...)
	if m.Type != "" || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("resumed: %d events (%v), want all %d once each in order", len(got), m, len(want))
	}
}

// TestCursorTooOld: a cursor from before what retention kept is an error
// naming the oldest cursor kept, never a silent gap; one beyond the log's head
// (another log's, or from before a restore) names the head.
func TestCursorTooOld(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	past := time.Now().Add(-time.Hour)
	ctx := context.Background()
	var seqs []int64
	for range 3 {
		e := &errand.Event{Stream: "orders.old", Tenant: "default", Type: "x", Time: past, Data: []byte(`{}`), ExpiresAt: &past}
		if err := a.store.WithTx(ctx, func(tx storage.Tx) error { return tx.InsertEvent(e) }); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
	}
	if err := a.store.WithTx(ctx, func(tx storage.Tx) error { _, err := tx.ExpireEvents(time.Now(), 100); return err }); err != nil {
		t.Fatal(err)
	}
	w := a.connect()
	w.subscribe("old", `subscription { channel(channel: "orders.old", after: "0") { id } }`, nil)
	m := w.read()
	if m.Type != "error" || !strings.Contains(string(m.Payload), `"code":"invalid_cursor"`) ||
		!strings.Contains(string(m.Payload), `"resumeAfter":"`+errand.FormatCursor(seqs[2])+`"`) {
		t.Fatalf("a cursor older than what is kept: %+v %s, want invalid_cursor with resumeAfter %d", m, m.Payload, seqs[2])
	}
	head := a.publish("orders.new", 1, `{}`)[0]
	w.subscribe("ahead", `subscription { channel(channel: "orders.new", after: "999999") { id } }`, nil)
	m = w.read()
	if m.Type != "error" || !strings.Contains(string(m.Payload), `"code":"invalid_cursor"`) || !strings.Contains(string(m.Payload), `"resumeAfter":"`+head+`"`) {
		t.Fatalf("a cursor beyond the log's head: %+v %s, want invalid_cursor with resumeAfter %s", m, m.Payload, head)
	}
}

// TestJobSubscriptions: job pushes the job's state until it has finished;
// jobEvents of a finished job with nothing after the cursor completes at once.
func TestJobSubscriptions(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	r := a.query(`mutation { submitJob(operation: "echo", wait: 0) { id } }`, nil)
	var sub struct{ ID string }
	json.Unmarshal(r.Data["submitJob"], &sub)
	w := a.connect()
	w.subscribe("j", `subscription($id: ID!) { job(id: $id) { status progress { percent } } }`, map[string]any{"id": sub.ID})
	next := func() string {
		m := w.read()
		if m.Type != "next" {
			t.Fatalf("job subscription: %+v %s", m, m.Payload)
		}
		return string(m.Payload)
	}
	if s := next(); !strings.Contains(s, `"status":"QUEUED"`) {
		t.Fatalf("first state %s, want QUEUED", s)
	}
	var leased struct {
		Leases []struct {
			LeaseID string `json:"lease_id"`
		}
	}
	_, b := a.rest("POST", "/v1/leases", `{"operations":["echo"]}`)
	json.Unmarshal(b, &leased)
	if s := next(); !strings.Contains(s, `"status":"RUNNING"`) {
		t.Fatalf("after the lease %s, want RUNNING", s)
	}
	a.rest("POST", "/v1/leases/"+leased.Leases[0].LeaseID+"/complete", `{"result":1}`)
	if s := next(); !strings.Contains(s, `"status":"SUCCEEDED"`) {
		t.Fatalf("after completion %s, want SUCCEEDED", s)
	}
	if m := w.read(); m.Type != "complete" {
		t.Fatalf("after the terminal state %+v, want complete", m)
	}
	r = a.query(`query($id: ID!) { job(id: $id) { events { edges { cursor } } } }`, map[string]any{"id": sub.ID})
	var j struct {
		Events struct{ Edges []struct{ Cursor string } }
	}
	json.Unmarshal(r.Data["job"], &j)
	last := j.Events.Edges[len(j.Events.Edges)-1].Cursor
	w.subscribe("done", `subscription($id: ID!, $after: String) { jobEvents(id: $id, after: $after) { id } }`, map[string]any{"id": sub.ID, "after": last})
	if m := w.read(); m.Type != "complete" || m.ID != "done" {
		t.Fatalf("jobEvents of a finished job after its last event: %+v, want complete at once", m)
	}
}

func (a *api) rest(method, path, body string) (int, []byte) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text())
	}
	return resp.StatusCode, []byte(b.String())
}

// TestSSE: graphql-sse's distinct connections mode: each result a next event
// with the event's cursor as id, request errors as a next event too, the end
// a complete event with an empty data line; Last-Event-ID resumes.
func TestSSE(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	ids := a.publish("orders.sse", 3, `{"n":1}`)
	read := func(body, lastID string, frames int) []string {
		req, _ := http.NewRequest("POST", a.URL+"/v1/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		var out []string
		sc := bufio.NewScanner(resp.Body)
		var frame []string
		for len(out) < frames && sc.Scan() {
			if sc.Text() == "" {
				out = append(out, strings.Join(frame, "|"))
				frame = nil
				continue
			}
			frame = append(frame, sc.Text())
		}
		return out
	}
	sub := `{"query":"subscription { channel(channel: \"orders.sse\", after: \"0\") { id } }"}`
	got := read(sub, "", 3)
	for i, f := range got {
		if want := "id: " + ids[i] + `|event: next|data: {"data":{"channel":{"id":"` + ids[i] + `"}}}`; f != want {
			t.Errorf("frame %d: %q, want %q", i, f, want)
		}
	}
	if got := read(sub, ids[1], 1); len(got) != 1 || !strings.HasPrefix(got[0], "id: "+ids[2]) {
		t.Errorf("with Last-Event-ID %s: %q, want the event after it", ids[1], got)
	}
	if got := read(`{"query":"{ nope }"}`, "", 2); len(got) != 2 || !strings.Contains(got[0], `"code":"invalid_request"`) || got[1] != "event: complete|data:" {
		t.Errorf("a request error: %q, want a next event with the error, then complete", got)
	}
	if got := read(`{"query":"{ me { id } }"}`, "", 2); len(got) != 2 || got[0] != `event: next|data: {"data":{"me":{"id":"dev"}}}` || got[1] != "event: complete|data:" {
		t.Errorf("a query: %q", got)
	}
}
