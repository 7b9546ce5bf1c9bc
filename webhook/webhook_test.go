package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/netguard"
	"github.com/errandhq/errand/storage"
	"golang.org/x/net/dns/dnsmessage"
)

func TestFilterMatch(t *testing.T) {
	job := func(typ, op string) *errand.Event {
		return &errand.Event{Stream: "job_01M81FYDCTE1X91SVCMDMS18K4", Type: typ, Job: &errand.Job{Operation: op}}
	}
	ch := func(name string) *errand.Event { return &errand.Event{Stream: name, Type: "order.created"} }
	disabled := &errand.Event{Stream: errand.StreamWebhooks, Type: errand.EventEndpointDisabled}
	for _, c := range []struct {
		filter []string
		event  *errand.Event
		want   bool
	}{
		{nil, job("job.started", "report"), true},
		{nil, ch("orders.eu"), true},
		{nil, disabled, true},
		{[]string{"job.succeeded"}, job("job.succeeded", "report"), true},
		{[]string{"job.succeeded"}, job("job.failed", "report"), false},
		{[]string{"job.succeeded"}, ch("orders.eu"), false},
		{[]string{"job.succeeded"}, disabled, false},
		{[]string{"job.*"}, job("job.progress", "x"), true},
		{[]string{"endpoint.disabled"}, disabled, true},
		{[]string{"operation:generate-*"}, job("job.created", "generate-report"), true},
		{[]string{"operation:generate-*"}, job("job.created", "resize"), false},
		{[]string{"operation:generate-*"}, ch("orders.eu"), false},
		{[]string{"job.failed", "operation:resize"}, job("job.failed", "resize"), true},
		{[]string{"job.failed", "operation:resize"}, job("job.succeeded", "resize"), false},
		{[]string{"job.failed", "operation:resize"}, job("job.failed", "report"), false},
		{[]string{"channel:orders.*"}, ch("orders.eu"), true},
		{[]string{"channel:orders.*"}, ch("orders.eu.paris"), false},
		{[]string{"channel:orders.>"}, ch("orders.eu.paris"), true},
		{[]string{"channel:orders.*"}, job("job.succeeded", "x"), false},
		{[]string{"channel:orders.*", "job.succeeded"}, job("job.succeeded", "x"), true},
		{[]string{"channel:orders.*", "operation:x"}, job("job.started", "x"), true},
	} {
		f, err := ParseFilter(c.filter)
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", c.filter, err)
		}
		if got := f.Match(c.event); got != c.want {
			t.Errorf("%q matches %s %s: %v, want %v", c.filter, c.event.Stream, c.event.Type, got, c.want)
		}
	}
}

func TestParseFilterRefuses(t *testing.T) {
	for _, c := range []struct {
		filter  []string
		pointer string
		says    string
	}{
		{[]string{"job.succeded"}, "/events/0", "matches no event type"},
		{[]string{"job.succeeded", "order.created"}, "/events/1", "channel:<pattern>"},
		{[]string{""}, "/events/0", "1 to 200"},
		{[]string{strings.Repeat("a", 201)}, "/events/0", "1 to 200"},
		{[]string{"channel:orders..x"}, "/events/0", "channel name or pattern"},
		{[]string{"channel:"}, "/events/0", "channel name or pattern"},
		{[]string{"operation:Bad Name"}, "/events/0", "operation name"},
		{[]string{"tenant:x"}, "/events/0", "unknown filter kind"},
		{make([]string, 65), "/events", "at most 64"},
	} {
		_, err := ParseFilter(c.filter)
		e, ok := err.(*errand.Error)
		if !ok || e.Code != errand.EVALIDATION || len(e.Fields) == 0 || e.Fields[0].Pointer != c.pointer ||
			!strings.Contains(e.Fields[0].Message, c.says) {
			t.Errorf("ParseFilter(%.40q) = %v, want %s at %s", c.filter, err, c.says, c.pointer)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"job.succeeded", "job.*", "channel:orders.*", "operation:gen-*", "channel:a.>", "x:y", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter([]string{s})
		if err != nil {
			if _, ok := err.(*errand.Error); !ok {
				t.Fatalf("ParseFilter(%q) returned a non-client error %v", s, err)
			}
			return
		}
		flt.Match(&errand.Event{Stream: "orders.eu", Type: "x"})
		flt.Match(&errand.Event{Stream: "job_x", Type: "job.succeeded", Job: &errand.Job{Operation: "gen-a"}})
	})
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	resp := func(code int, v string) *http.Response {
		return &http.Response{StatusCode: code, Header: http.Header{"Retry-After": {v}}}
	}
	for _, c := range []struct {
		resp *http.Response
		want time.Duration
		ok   bool
	}{
		{resp(429, "2"), 2 * time.Second, true},
		{resp(503, "120"), 120 * time.Second, true},
		{resp(429, "0"), time.Second, true},
		{resp(429, "99999999999"), 24 * time.Hour, true},
		{resp(429, now.Add(time.Minute).Format(http.TimeFormat)), time.Minute, true},
		{resp(429, "soon"), 0, false},
		{resp(500, "2"), 0, false},
		{resp(429, ""), 0, false},
	} {
		got, ok := retryAfter(c.resp, now)
		if got != c.want || ok != c.ok {
			t.Errorf("retryAfter(%d %q) = %v %v, want %v %v", c.resp.StatusCode, c.resp.Header.Get("Retry-After"), got, ok, c.want, c.ok)
		}
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := jitter(10 * time.Second); d < 9*time.Second || d > 11*time.Second {
			t.Fatalf("jitter(10s) = %v, want within ±10%%", d)
		}
	}
	if jitter(0) != 0 {
		t.Fatal("jitter(0) is not 0")
	}
}

// fakeDNS answers A queries for every name with the address it holds now.
type fakeDNS struct {
	addr atomic.Pointer[netip.Addr]
	conn net.PacketConn
}

func startDNS(t *testing.T, ip string) *fakeDNS {
	d := &fakeDNS{}
	d.set(ip)
	var err error
	if d.conn, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.conn.Close() })
	go d.serve()
	return d
}

func (d *fakeDNS) set(ip string) { a := netip.MustParseAddr(ip); d.addr.Store(&a) }

func (d *fakeDNS) serve() {
	buf := make([]byte, 512)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) != nil || len(m.Questions) == 0 {
			continue
		}
		q := m.Questions[0]
		m.Header.Response, m.Header.Authoritative = true, true
		m.Answers = nil
		if q.Type == dnsmessage.TypeA {
			m.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: q.Class, TTL: 0},
				Body: &dnsmessage.AResource{A: d.addr.Load().As4()}}}
		}
		out, err := m.Pack()
		if err == nil {
			_, _ = d.conn.WriteTo(out, from)
		}
	}
}

func (d *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

// TestDNSRebinding: a name that resolved to a public address when the endpoint
// was saved and resolves to loopback when the delivery is made is refused at
// connect time, and the receiver on loopback never sees a request.
func TestDNSRebinding(t *testing.T) {
	var hits atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer recv.Close()
	_, port, _ := net.SplitHostPort(recv.Listener.Addr().String())
	dns := startDNS(t, "93.184.216.34")
	guard, _ := netguard.New(nil)
	guard.Resolver = dns.resolver()
	store := teststore.Open(t)
	s := wired(store, &Config{Guard: guard, Schedule: []time.Duration{0}, Timeout: 2 * time.Second})
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx)
	url := "http://rebind.test:" + port + "/hook"
	ep, err := s.Create(ctx, errand.DevPrincipal, EndpointInput{URL: &url})
	if err != nil {
		t.Fatalf("Create while the name is public: %v", err)
	}
	dns.set("127.0.0.1")
	_, err = s.Create(ctx, errand.DevPrincipal, EndpointInput{URL: &url})
	if e, ok := err.(*errand.Error); !ok || len(e.Fields) != 1 || e.Fields[0].Pointer != "/url" || !strings.Contains(e.Fields[0].Message, "127.0.0.0/8") {
		t.Fatalf("Create while the name is loopback = %#v, want refused at /url", err)
	}
	err = s.store.WithTx(ctx, func(tx storage.Tx) error {
		return tx.InsertEvent(&errand.Event{Stream: "orders.eu", Tenant: errand.DevPrincipal.Tenant, Type: "x", Time: errand.Now(), Data: []byte(`{}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	var d *errand.Delivery
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ds, _, err := s.Deliveries(ctx, errand.DevPrincipal, DeliveryPage{EndpointID: ep.ID})
		if err == nil && len(ds) == 1 && ds[0].Status == errand.DeliveryFailed {
			d = ds[0]
			break
		}
	}
	if d == nil || len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, "refused") || !strings.Contains(d.Attempts[0].Error, "127.0.0.0/8") {
		b, _ := json.Marshal(d)
		t.Fatalf("delivery = %s; want failed with one refused attempt", b)
	}
	if hits.Load() != 0 {
		t.Fatalf("the loopback receiver got %d requests", hits.Load())
	}
}

// TestRetriesAndHealth drives one delivery through failures to success, and an
// endpoint to disabled after failing for DisableAfter, which emits an
// endpoint.disabled event to the endpoints that subscribe to it.
func TestRetriesAndHealth(t *testing.T) {
	var mu sync.Mutex
	answers := map[string][]int{"/flaky": {500, 500, 200}, "/down": {500, 500, 500, 500, 500, 500}}
	seen := map[string][]http.Header{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen[r.URL.Path] = append(seen[r.URL.Path], r.Header.Clone())
		code := 200
		if a := answers[r.URL.Path]; len(a) > 0 {
			code, answers[r.URL.Path] = a[0], a[1:]
		}
		w.WriteHeader(code)
	}))
	defer recv.Close()
	guard, _ := netguard.New([]string{"127.0.0.0/8"})
	s := wired(teststore.Open(t), &Config{Guard: guard, DisableAfter: 300 * time.Millisecond,
		Schedule: []time.Duration{0, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}})
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx)
	mk := func(path string, events ...string) *errand.Endpoint {
		u := recv.URL + path
		ep, err := s.Create(ctx, errand.DevPrincipal, EndpointInput{URL: &u, Events: &events})
		if err != nil {
			t.Fatal(err)
		}
		return ep
	}
	flaky, down, ops := mk("/flaky", "channel:orders.*"), mk("/down", "channel:orders.*"), mk("/ops", "endpoint.disabled")
	err := s.store.WithTx(ctx, func(tx storage.Tx) error {
		return tx.InsertEvent(&errand.Event{Stream: "orders.eu", Tenant: "default", Type: "x", Time: errand.Now(), Data: []byte(`{}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	deliveries := func(ep string) []*errand.Delivery {
		ds, _, _ := s.Deliveries(ctx, errand.DevPrincipal, DeliveryPage{EndpointID: ep})
		return ds
	}
	wait("the flaky endpoint's delivery to succeed", func() bool {
		ds := deliveries(flaky.ID)
		return len(ds) == 1 && ds[0].Status == errand.DeliverySucceeded
	})
	d := deliveries(flaky.ID)[0]
	if len(d.Attempts) != 3 || d.Attempts[0].StatusCode != 500 || d.Attempts[2].StatusCode != 200 {
		t.Fatalf("flaky attempts = %+v", d.Attempts)
	}
	mu.Lock()
	ids := []string{seen["/flaky"][0].Get("webhook-id"), seen["/flaky"][1].Get("webhook-id"), seen["/flaky"][2].Get("webhook-id")}
	mu.Unlock()
	if ids[0] != d.ID || ids[1] != d.ID || ids[2] != d.ID {
		t.Fatalf("webhook-id across retries = %v, want %s each time", ids, d.ID)
	}
	if ep, _ := s.Get(ctx, errand.DevPrincipal, flaky.ID); ep.FailingSince != nil {
		t.Fatalf("the flaky endpoint is still failing since %v after a success", ep.FailingSince)
	}
	wait("the down endpoint to be disabled", func() bool {
		ep, _ := s.Get(ctx, errand.DevPrincipal, down.ID)
		return ep.Disabled
	})
	if ep, _ := s.Get(ctx, errand.DevPrincipal, down.ID); ep.DisabledReason != "failing" {
		t.Fatalf("disabled reason = %q, want failing", ep.DisabledReason)
	}
	wait("endpoint.disabled to reach the ops endpoint", func() bool {
		ds := deliveries(ops.ID)
		return len(ds) == 1 && ds[0].Status == errand.DeliverySucceeded && ds[0].EventType == errand.EventEndpointDisabled
	})
	x, err := s.Delivery(ctx, errand.DevPrincipal, deliveries(ops.ID)[0].ID)
	if err != nil || !strings.Contains(string(x.Payload), down.ID) || !strings.Contains(string(x.Payload), `"disabled_reason":"failing"`) {
		t.Fatalf("endpoint.disabled payload = %s, %v", x.Payload, err)
	}
}

// TestCreateRefusesPrivate: without an allowlist, URLs that are or resolve to
// loopback, private or metadata addresses are refused, for endpoints and callbacks.
func TestCreateRefusesPrivate(t *testing.T) {
	s := wired(teststore.Open(t), nil)
	ctx := context.Background()
	for _, c := range []struct{ url, says string }{
		{"http://127.0.0.1:8080/hook", "127.0.0.0/8"},
		{"http://localhost/hook", "127.0.0.0/8"},
		{"http://10.0.0.7/hook", "10.0.0.0/8"},
		{"http://169.254.169.254/latest/meta-data/", "169.254.0.0/16"},
		{"http://[::1]/hook", "::1/128"},
		{"http://[::ffff:127.0.0.1]/hook", "127.0.0.0/8"},
	} {
		_, err := s.Create(ctx, errand.DevPrincipal, EndpointInput{URL: &c.url})
		if e, ok := err.(*errand.Error); !ok || e.Fields[0].Pointer != "/url" || !strings.Contains(e.Fields[0].Message, c.says) {
			t.Errorf("Create(%s) = %#v, want refused (%s)", c.url, err, c.says)
		}
		err = s.CheckCallbackURL(ctx, c.url)
		if e, ok := err.(*errand.Error); !ok || e.Fields[0].Pointer != "/callback_url" || !strings.Contains(e.Fields[0].Message, c.says) {
			t.Errorf("CheckCallbackURL(%s) = %#v, want refused (%s)", c.url, err, c.says)
		}
	}
}

// TestRateLimit: an endpoint's rate_limit spaces its attempts; another endpoint
// without one is not held back.
func TestRateLimit(t *testing.T) {
	var mu sync.Mutex
	times := map[string][]time.Time{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times[r.URL.Path] = append(times[r.URL.Path], time.Now())
		mu.Unlock()
	}))
	defer recv.Close()
	guard, _ := netguard.New([]string{"127.0.0.0/8"})
	s := wired(teststore.Open(t), &Config{Guard: guard})
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx)
	for _, c := range []struct {
		path string
		rate int
	}{{"/slow", 5}, {"/free", 0}} {
		u, rate, events := recv.URL+c.path, c.rate, []string{"channel:orders.*"}
		if _, err := s.Create(ctx, errand.DevPrincipal, EndpointInput{URL: &u, RateLimit: &rate, Events: &events}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	for range 15 {
		err := s.store.WithTx(ctx, func(tx storage.Tx) error {
			return tx.InsertEvent(&errand.Event{Stream: "orders.eu", Tenant: "default", Type: "x", Time: errand.Now(), Data: []byte(`{}`)})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(times["/slow"])
		mu.Unlock()
		if n == 15 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 15 deliveries to the rate-limited endpoint", n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// 5 a second with a burst of 5: the 15th goes out after about 2 s.
	if el := times["/slow"][14].Sub(start); el < 1800*time.Millisecond {
		t.Fatalf("15 deliveries at 5/s took %v", el)
	}
	if len(times["/free"]) != 15 || times["/free"][14].Sub(start) > time.Second {
		t.Fatalf("the unlimited endpoint: %d deliveries, last after %v", len(times["/free"]), times["/free"][len(times["/free"])-1].Sub(start))
	}
}

// wired is the service wired to its store as cmd/errand wires it: the outbox
// hooked into every event's transaction, the deliverer listening to commits.
func wired(store storage.Store, cfg *Config) *Service {
	s, err := New(store, cfg)
	if err != nil {
		panic(err)
	}
	store.Hook(s)
	store.Listen(s)
	return s
}

// TestRedeliverSendsThePayload: a redelivery sends the delivery's body again,
// whole, with its webhook-id and its event's traceparent, however quickly
// its lane picks it up (the answer to the request leaves the payload out).
func TestRedeliverSendsThePayload(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	var traces []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, traces = append(bodies, string(b)), append(traces, r.Header.Get("traceparent"))
		mu.Unlock()
	}))
	defer recv.Close()
	guard, _ := netguard.New([]string{"127.0.0.0/8"})
	s := wired(teststore.Open(t), &Config{Guard: guard})
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx)
	u, events := recv.URL+"/h", []string{"channel:orders.*"}
	ep, err := s.Create(ctx, errand.DevPrincipal, EndpointInput{URL: &u, Events: &events})
	if err != nil {
		t.Fatal(err)
	}
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	if err := s.store.WithTx(ctx, func(tx storage.Tx) error {
		return tx.InsertEvent(&errand.Event{Stream: "orders.eu", Tenant: "default", Type: "x", Time: errand.Now(),
			Data: []byte(`{"n":1}`), TraceParent: tp})
	}); err != nil {
		t.Fatal(err)
	}
	got := func() ([]string, []string) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(bodies), slices.Clone(traces)
	}
	waitFor := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if b, _ := got(); len(b) >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d deliveries, want %d", len(bodies), n)
			}
		}
	}
	waitFor(1)
	var ds []*errand.Delivery
	for deadline := time.Now().Add(10 * time.Second); len(ds) == 0 || ds[0].Status != errand.DeliverySucceeded; time.Sleep(10 * time.Millisecond) {
		ds, _, _ = s.Deliveries(ctx, errand.DevPrincipal, DeliveryPage{EndpointID: ep.ID})
		if time.Now().After(deadline) {
			t.Fatalf("the delivery did not succeed: %+v", ds)
		}
	}
	for range 20 {
		before, _ := got()
		x, err := s.Redeliver(ctx, errand.DevPrincipal, ds[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if x.Payload != nil {
			t.Errorf("Redeliver answered the payload")
		}
		waitFor(len(before) + 1)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			s.d.mu.Lock()
			_, busy := s.d.pending[ds[0].ID]
			s.d.mu.Unlock()
			if !busy {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the redelivery is still being sent")
			}
		}
	}
	bs, ts := got()
	for i, b := range bs {
		if b != bs[0] || !strings.Contains(b, `"n":1`) {
			t.Fatalf("delivery %d sent %q, want the first's %q", i, b, bs[0])
		}
		if ts[i] != tp {
			t.Fatalf("delivery %d sent traceparent %q, want the event's %q", i, ts[i], tp)
		}
	}
}
