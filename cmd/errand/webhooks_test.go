package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/client"
	"github.com/errandhq/errand/worker"
)

// webhookConfig serves the test operations, channels for deliveries, and a
// retry schedule short enough to watch: at once, then after 1 s, 2 s and 2 s.
const webhookConfig = testConfig + `
channels:
  "orders.*": {}
  "t.*": {}
webhooks:
  timeout: 2s
  retry_schedule: [0s, 1s, 2s, 2s]
`

// endpointCreated is the answer to POST /v1/webhooks.
type endpointCreated struct {
	errand.Endpoint
	Secret string `json:"secret"`
}

func createEndpoint(t *testing.T, s *server, url string, events ...string) endpointCreated {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"url": url, "events": events, "description": "test"})
	code, _, body := s.do("POST", "/v1/webhooks", string(b))
	var ep endpointCreated
	if code != http.StatusCreated {
		t.Fatalf("create endpoint %s: %d %s", url, code, body)
	}
	mustJSON(t, body, &ep)
	if !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("created endpoint has no whsec_ secret: %s", body)
	}
	return ep
}

func publish(t *testing.T, s *server, ch, typ string) string {
	t.Helper()
	code, _, body := s.do("POST", "/v1/channels/"+ch+"/events", `{"type":"`+typ+`","data":{"n":1}}`)
	if code != http.StatusAccepted {
		t.Fatalf("publish to %s: %d %s", ch, code, body)
	}
	var p struct{ ID string }
	mustJSON(t, body, &p)
	return p.ID
}

type deliveryPage struct {
	Deliveries []errand.Delivery `json:"deliveries"`
}

func deliveries(t *testing.T, s *server, path string) []errand.Delivery {
	t.Helper()
	code, _, body := s.do("GET", path, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	var p deliveryPage
	mustJSON(t, body, &p)
	return p.Deliveries
}

// receiverLine is what webhook-receiver.mjs prints for each request.
type receiverLine struct {
	Path, ID, Type string
	Verified       []string
	Signatures     int
}

// TestJSStandardWebhooks verifies real deliveries with the npm standardwebhooks
// package: endpoint subscriptions, a job's callback, and both during secret
// rotation (old and new secrets each verify).
func TestJSStandardWebhooks(t *testing.T) {
	t.Parallel()
	s := startServer(t, webhookConfig)
	recv := node(t, "webhook-receiver.mjs")
	stdin, err := recv.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := lines(t, recv)
	port := ""
	select {
	case l := <-out:
		port = strings.TrimPrefix(l, "listening ")
	case <-time.After(20 * time.Second):
		t.Fatal("the receiver did not start")
	}
	base := "http://127.0.0.1:" + port
	trust := func(path, secret string) { fmt.Fprintf(stdin, "%s %s\n", path, secret) }
	next := func(what string) receiverLine {
		t.Helper()
		select {
		case l := <-out:
			var r receiverLine
			mustJSON(t, []byte(l), &r)
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("no delivery for %s in 20s", what)
		}
		return receiverLine{}
	}

	ep := createEndpoint(t, s, base+"/hook", "job.succeeded", "channel:orders.*")
	trust("/hook", ep.Secret)
	code, _, body := s.do("GET", "/v1/callback-secret", "")
	var cb struct{ Secret string }
	mustJSON(t, body, &cb)
	if code != 200 || !strings.HasPrefix(cb.Secret, "whsec_") {
		t.Fatalf("callback secret: %d %s", code, body)
	}
	trust("/cb", cb.Secret)
	time.Sleep(100 * time.Millisecond) // the receiver has read its secrets

	runWorker(t, s, "echo", func(ctx context.Context, j *worker.Job) (any, error) { return map[string]int{"ok": 1}, nil })
	j, err := s.client().Submit(context.Background(), "echo", map[string]int{"n": 1}, &client.SubmitOptions{CallbackURL: base + "/cb"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]receiverLine{}
	for range 2 {
		r := next("the job")
		got[r.Path] = r
	}
	if r := got["/hook"]; r.Type != "job.succeeded" || len(r.Verified) != 1 {
		t.Fatalf("endpoint delivery of the job = %+v, want job.succeeded verified", r)
	}
	if r := got["/cb"]; r.Type != "job.succeeded" || len(r.Verified) != 1 {
		t.Fatalf("callback of job %s = %+v, want job.succeeded verified with the callback secret", j.Job.ID, r)
	}

	publish(t, s, "orders.eu", "order.created")
	if r := next("the channel event"); r.Path != "/hook" || r.Type != "order.created" || len(r.Verified) != 1 {
		t.Fatalf("channel delivery = %+v", r)
	}

	code, _, body = s.do("POST", "/v1/webhooks/"+ep.ID+"/rotate-secret", "")
	var rotated endpointCreated
	mustJSON(t, body, &rotated)
	if code != 200 || rotated.Secret == ep.Secret || !strings.HasPrefix(rotated.Secret, "whsec_") {
		t.Fatalf("rotate: %d %s", code, body)
	}
	trust("/hook", rotated.Secret)
	code, _, body = s.do("POST", "/v1/callback-secret/rotate", "")
	var cb2 struct{ Secret, PreviousSecret string }
	mustJSON(t, body, &cb2)
	if code != 200 || cb2.Secret == cb.Secret {
		t.Fatalf("rotate callback secret: %d %s", code, body)
	}
	trust("/cb", cb2.Secret)
	time.Sleep(100 * time.Millisecond)

	publish(t, s, "orders.eu", "order.paid")
	if r := next("the event after rotation"); r.Type != "order.paid" || len(r.Verified) != 2 || r.Signatures != 2 {
		t.Fatalf("delivery during rotation = %+v, want two signatures, old and new secret both verifying", r)
	}
	if _, err := s.client().Submit(context.Background(), "echo", nil, &client.SubmitOptions{CallbackURL: base + "/cb"}); err != nil {
		t.Fatal(err)
	}
	got = map[string]receiverLine{}
	for range 2 {
		r := next("the second job")
		got[r.Path] = r
	}
	if r := got["/cb"]; len(r.Verified) != 2 || r.Signatures != 2 {
		t.Fatalf("callback during rotation = %+v, want old and new callback secrets both verifying", r)
	}
}

// recorder is a receiver that answers each path as told and records attempts.
type recorder struct {
	mu    sync.Mutex
	times map[string][]time.Time
	ids   map[string][]string
}

func newRecorder(t *testing.T, secret func() string, answer func(path string, n int, w http.ResponseWriter, r *http.Request)) (*recorder, *httptest.Server) {
	rec := &recorder{times: map[string][]time.Time{}, ids: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.times[r.URL.Path] = append(rec.times[r.URL.Path], time.Now())
		rec.ids[r.URL.Path] = append(rec.ids[r.URL.Path], r.Header.Get("webhook-id"))
		n := len(rec.times[r.URL.Path])
		rec.mu.Unlock()
		answer(r.URL.Path, n, w, r)
	}))
	t.Cleanup(srv.Close)
	return rec, srv
}

func (r *recorder) count(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.times[path])
}

// TestE2EWebhookReceivers drives one delivery to each kind of bad receiver and
// checks the attempts, their spacing and the final states through the API.
func TestE2EWebhookReceivers(t *testing.T) {
	t.Parallel()
	s := startServer(t, webhookConfig)
	rec, srv := newRecorder(t, nil, func(path string, n int, w http.ResponseWriter, r *http.Request) {
		switch path {
		case "/flaky":
			if n <= 2 {
				w.WriteHeader(500)
			}
		case "/limited":
			if n == 1 {
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(429)
			}
		case "/gone":
			w.WriteHeader(410)
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/hang":
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			}
		}
	})
	eps := map[string]endpointCreated{}
	for _, p := range []string{"flaky", "limited", "gone", "redirect", "hang"} {
		eps[p] = createEndpoint(t, s, srv.URL+"/"+p, "channel:t."+p)
		publish(t, s, "t."+p, "x")
	}
	final := func(p string, status errand.DeliveryStatus, attempts int) errand.Delivery {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ds := deliveries(t, s, "/v1/webhooks/"+eps[p].ID+"/deliveries")
			if len(ds) == 1 && ds[0].Status == status && len(ds[0].Attempts) == attempts {
				return ds[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: deliveries %+v; want one %s after %d attempts", p, ds, status, attempts)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	gap := func(d errand.Delivery, i int) time.Duration { return d.Attempts[i].Time.Sub(d.Attempts[i-1].Time) }
	within := func(p string, got, lo, hi time.Duration) {
		t.Helper()
		if got < lo || got > hi {
			t.Errorf("%s: gap %v, want between %v and %v", p, got, lo, hi)
		}
	}

	d := final("flaky", errand.DeliverySucceeded, 3)
	if d.Attempts[0].StatusCode != 500 || d.Attempts[1].StatusCode != 500 || d.Attempts[2].StatusCode != 200 {
		t.Errorf("flaky attempts: %+v", d.Attempts)
	}
	within("flaky 1→2", gap(d, 1), 900*time.Millisecond, 1500*time.Millisecond)
	within("flaky 2→3", gap(d, 2), 1800*time.Millisecond, 2500*time.Millisecond)
	rec.mu.Lock()
	for _, id := range rec.ids["/flaky"] {
		if id != d.ID {
			t.Errorf("webhook-id %s on a retry of %s", id, d.ID)
		}
	}
	rec.mu.Unlock()

	d = final("limited", errand.DeliverySucceeded, 2)
	if d.Attempts[0].StatusCode != 429 {
		t.Errorf("limited attempts: %+v", d.Attempts)
	}
	within("limited (Retry-After: 2, schedule says 1s)", gap(d, 1), 2*time.Second, 2600*time.Millisecond)

	d = final("gone", errand.DeliveryFailed, 1)
	var ep errand.Endpoint
	_, _, body := s.do("GET", "/v1/webhooks/"+eps["gone"].ID, "")
	mustJSON(t, body, &ep)
	if d.Attempts[0].StatusCode != 410 || !ep.Disabled || ep.DisabledReason != "gone" {
		t.Errorf("after 410: attempts %+v, endpoint %+v; want it disabled (gone)", d.Attempts, ep)
	}

	d = final("redirect", errand.DeliveryFailed, 4)
	for _, a := range d.Attempts {
		if a.StatusCode != 302 || !strings.Contains(a.Error, "redirects are not followed") {
			t.Errorf("redirect attempt %+v", a)
		}
	}
	if n := rec.count("/elsewhere"); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}

	d = final("hang", errand.DeliveryFailed, 4)
	for _, a := range d.Attempts {
		if a.StatusCode != 0 || !strings.Contains(a.Error, "no answer within 2s") || a.LatencyMS < 1900 || a.LatencyMS > 3000 {
			t.Errorf("hang attempt %+v; want a 2 s timeout", a)
		}
	}
	within("hang 1→2 (after a 2 s timeout)", gap(d, 1), 2800*time.Millisecond, 3600*time.Millisecond)

	// Redelivering keeps the webhook-id and starts the schedule over.
	code, _, body := s.do("POST", "/v1/deliveries/"+final("flaky", errand.DeliverySucceeded, 3).ID+"/redeliver", "")
	if code != http.StatusAccepted {
		t.Fatalf("redeliver: %d %s", code, body)
	}
	final("flaky", errand.DeliverySucceeded, 4)
	// Recovering re-sends what failed since a time; an enabled endpoint is needed.
	code, _, body = s.do("POST", "/v1/webhooks/"+eps["gone"].ID+"/recover", `{"since":"2020-01-01T00:00:00Z"}`)
	if code != http.StatusConflict {
		t.Fatalf("recover on a disabled endpoint: %d %s", code, body)
	}
	code, _, body = s.do("POST", "/v1/webhooks/"+eps["redirect"].ID+"/recover", `{"since":"2020-01-01T00:00:00Z"}`)
	if code != http.StatusAccepted || !strings.Contains(string(body), `"redelivering":1`) {
		t.Fatalf("recover: %d %s", code, body)
	}
	final("redirect", errand.DeliveryFailed, 8)
}

// TestE2EWebhookCrash kills errand with SIGKILL during a burst of 5,000
// deliveries: after a restart every acknowledged event reaches the receiver at
// least once, and webhook-id lets it count each exactly once.
func TestE2EWebhookCrash(t *testing.T) {
	t.Parallel()
	const total = 5000
	var (
		mu      sync.Mutex
		byID    = map[string]string{} // webhook-id → event cursor
		cursors = map[string]int{}    // event cursor → deliveries seen
		secret  atomic.Value
		gate    = make(chan struct{}) // closed once every event is published
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		ev, err := client.VerifyWebhook(r, secret.Load().(string))
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var data struct{ Cursor string }
		_ = json.Unmarshal(ev.Data, &data)
		mu.Lock()
		if prev, ok := byID[ev.ID]; ok && prev != data.Cursor {
			t.Errorf("webhook-id %s carried events %s and %s", ev.ID, prev, data.Cursor)
		}
		byID[ev.ID] = data.Cursor
		cursors[data.Cursor]++
		mu.Unlock()
	}))
	defer srv.Close()
	// Attempts wait at the gate while the burst is published: give them time.
	s := startServer(t, strings.Replace(webhookConfig, "timeout: 2s", "timeout: 10s", 1))
	s.keepPort()
	ep := createEndpoint(t, s, srv.URL+"/hook", "channel:orders.*")
	secret.Store(ep.Secret)

	var acked sync.Map // cursor → true for every 202
	var sent atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= total {
				resp, err := http.Post(s.URL+"/v1/channels/orders.eu/events", "application/json", strings.NewReader(`{"type":"order.created","data":{}}`))
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var p struct{ ID string }
				if resp.StatusCode == http.StatusAccepted && json.Unmarshal(b, &p) == nil {
					acked.Store(p.ID, true)
				}
			}
		}()
	}
	wg.Wait()
	close(gate)
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(byID)
	}
	for deadline := time.Now().Add(60 * time.Second); delivered() < total/5; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d deliveries in 60s", delivered())
		}
	}
	s.kill()
	atKill := delivered()
	s.start()
	var ackedN int
	acked.Range(func(any, any) bool { ackedN++; return true })
	var missing []string
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		missing = missing[:0]
		mu.Lock()
		acked.Range(func(k, _ any) bool {
			if cursors[k.(string)] == 0 {
				missing = append(missing, k.(string))
			}
			return true
		})
		mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	mu.Lock()
	ids, dups := len(byID), 0
	for _, n := range cursors {
		dups += n - 1
	}
	mu.Unlock()
	t.Logf("%d events acknowledged, %d delivered before the kill; after restart %d distinct webhook-ids, %d repeats (dropped by id)", ackedN, atKill, ids, dups)
	if ackedN != total || atKill >= total {
		t.Fatalf("%d of %d events acknowledged, %d delivered at the kill: not the burst this test is about", ackedN, total, atKill)
	}
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged events never delivered, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	if ids != total {
		t.Fatalf("%d distinct webhook-ids for %d events", ids, total)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		pending := deliveries(t, s, "/v1/webhooks/"+ep.ID+"/deliveries?status=pending")
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still pending after every event arrived", len(pending))
		}
	}
}

// TestE2EWebhookBadInput sends what must be refused, each with a clear problem.
func TestE2EWebhookBadInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, webhookConfig)
	ep := createEndpoint(t, s, "http://127.0.0.1:9/hook")
	for _, c := range []struct {
		method, path, body string
		status             int
		code, pointer, msg string
	}{
		{"POST", "/v1/webhooks", `{"url":"ftp://example.com/x"}`, 422, "validation_failed", "/url", "http:// or https://"},
		{"POST", "/v1/webhooks", `{"url":"javascript:alert(1)"}`, 422, "validation_failed", "/url", "http:// or https://"},
		{"POST", "/v1/webhooks", `{"url":"http://10.1.2.3/x"}`, 422, "validation_failed", "/url", "10.0.0.0/8"},
		{"POST", "/v1/webhooks", `{"url":"http://169.254.169.254/latest/meta-data"}`, 422, "validation_failed", "/url", "169.254.0.0/16"},
		{"POST", "/v1/webhooks", `{"url":"http://[fd00:ec2::254]/"}`, 422, "validation_failed", "/url", "fc00::/7"},
		{"POST", "/v1/webhooks", `{"url":"http://user:pw@example.com/"}`, 422, "validation_failed", "/url", "credentials"},
		{"POST", "/v1/webhooks", `{"url":"http://no-such-host.invalid/"}`, 422, "validation_failed", "/url", "cannot resolve"},
		{"POST", "/v1/webhooks", `{"description":"x"}`, 422, "validation_failed", "/url", "required"},
		{"POST", "/v1/webhooks", `{"url":"http://127.0.0.1/x","events":["job.succeded"]}`, 422, "validation_failed", "/events/0", "matches no event type"},
		{"POST", "/v1/webhooks", `{"url":"http://127.0.0.1/x","events":["channel:orders..x"]}`, 422, "validation_failed", "/events/0", "channel name or pattern"},
		{"POST", "/v1/webhooks", `{"url":"http://127.0.0.1/x","events":"job.succeeded"}`, 422, "validation_failed", "/events", "an array"},
		{"POST", "/v1/webhooks", `{"url":"http://127.0.0.1/x","description":"` + strings.Repeat("d", 1025) + `"}`, 422, "validation_failed", "/description", "at most 1024"},
		{"POST", "/v1/webhooks", `{"url":"http://127.0.0.1/x","rate_limit":-1}`, 422, "validation_failed", "/rate_limit", "0 (no limit)"},
		{"POST", "/v1/webhooks", `{"url":"http://127.0.0.1/x","secret":"mine"}`, 422, "validation_failed", "/secret", "unknown field"},
		{"POST", "/v1/webhooks", `{"url":`, 400, "malformed_json", "", "ends in the middle"},
		{"POST", "/v1/webhooks", `{"url":"http://127.0.0.1/` + strings.Repeat("x", 70000) + `"}`, 413, "body_too_large", "", "larger than"},
		{"PATCH", "/v1/webhooks/" + ep.ID, `{"url":"http://10.0.0.1/"}`, 422, "validation_failed", "/url", "10.0.0.0/8"},
		{"PATCH", "/v1/webhooks/" + ep.ID, `{"disabled":"yes"}`, 422, "validation_failed", "/disabled", "a boolean"},
		{"GET", "/v1/webhooks/ep_01M81FYDCTE1X91SVCMDMS18K4", "", 404, "not_found", "", "does not exist"},
		{"DELETE", "/v1/webhooks/nope", "", 404, "not_found", "", "does not exist"},
		{"GET", "/v1/webhooks/" + ep.ID + "/deliveries?cursor=zzz", "", 400, "invalid_cursor", "", "not one errand issued"},
		{"GET", "/v1/webhooks/" + ep.ID + "/deliveries?status=lost", "", 400, "invalid_request", "", "pending, succeeded or failed"},
		{"POST", "/v1/webhooks/" + ep.ID + "/recover", `{}`, 422, "validation_failed", "/since", "RFC 3339"},
		{"POST", "/v1/webhooks/" + ep.ID + "/recover", `{"since":"yesterday"}`, 400, "malformed_json", "", "not valid JSON"},
		{"POST", "/v1/deliveries/msg_01M81FYDCTE1X91SVCMDMS18K4/redeliver", "", 404, "not_found", "", "does not exist"},
		{"POST", "/v1/jobs", `{"operation":"echo","callback_url":"http://169.254.169.254/"}`, 422, "validation_failed", "/callback_url", "169.254.0.0/16"},
		{"POST", "/v1/jobs", `{"operation":"echo","callback_url":"file:///etc/passwd"}`, 422, "validation_failed", "/callback_url", "http:// or https://"},
	} {
		code, h, body := s.do(c.method, c.path, c.body)
		var p errand.Problem
		_ = json.Unmarshal(body, &p)
		ok := code == c.status && p.Code == c.code && h.Get("Content-Type") == "application/problem+json" &&
			strings.Contains(string(body), c.msg)
		if c.pointer != "" {
			ok = ok && len(p.Errors) > 0 && p.Errors[0].Pointer == c.pointer
		}
		if !ok {
			t.Errorf("%s %s %.60s: %d %s; want %d %s at %q saying %q", c.method, c.path, c.body, code, truncate(body), c.status, c.code, c.pointer, c.msg)
		}
	}
	if eps := deliveries(t, s, "/v1/deliveries"); len(eps) != 0 {
		t.Fatalf("bad input produced deliveries: %+v", eps)
	}
}
