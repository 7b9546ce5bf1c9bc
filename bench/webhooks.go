package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand/client"
	"github.com/errandhq/errand/signing"
)

// WebhookResult is one webhook delivery run.
type WebhookResult struct {
	Name       string  `json:"name"`
	Endpoints  int     `json:"endpoints"`
	Events     int     `json:"events"`
	Deliveries int64   `json:"deliveries"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"deliveries_per_second"`
	// P50ms and P99ms are from publishing the event to the receiver having the
	// first attempt, over the fast endpoints.
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
}

// receiver is a local webhook receiver that verifies every delivery and records
// how long each took from its event's publication (data.data.t).
type receiver struct {
	srv     *http.Server
	url     string
	mu      sync.Mutex
	secrets map[string]string // path → secret
	lat     map[string][]time.Duration
	n       atomic.Int64
	bad     atomic.Int64
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String(), secrets: map[string]string{}, lat: map[string][]time.Duration{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve)}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if strings.HasPrefix(req.URL.Path, "/hang") {
		<-req.Context().Done() // never answers: errand gives up at its timeout
		return
	}
	r.mu.Lock()
	secret := r.secrets[req.URL.Path]
	r.mu.Unlock()
	ev, err := client.VerifyWebhook(req, secret)
	if err != nil {
		r.bad.Add(1)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var d struct {
		Data struct{ T int64 }
	}
	_ = json.Unmarshal(ev.Data, &d)
	lat := time.Since(time.Unix(0, d.Data.T))
	r.mu.Lock()
	r.lat[req.URL.Path] = append(r.lat[req.URL.Path], lat)
	r.mu.Unlock()
	r.n.Add(1)
}

func (r *receiver) close() { r.srv.Close() }

// latencies returns every recorded latency of the paths with prefix.
func (r *receiver) latencies(prefix string) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for p, l := range r.lat {
		if strings.HasPrefix(p, prefix) {
			out = append(out, l...)
		}
	}
	return out
}

// endpoint creates an endpoint for path subscribed to channel and trusts its secret.
func (r *receiver) endpoint(ctx context.Context, base, path, channel string) (string, error) {
	body, _ := json.Marshal(map[string]any{"url": r.url + path, "events": []string{"channel:" + channel}})
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/webhooks", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ep struct{ ID, Secret string }
	if err := json.NewDecoder(resp.Body).Decode(&ep); err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create endpoint: %d %v", resp.StatusCode, err)
	}
	r.mu.Lock()
	r.secrets[path] = ep.Secret
	r.mu.Unlock()
	return ep.ID, nil
}

// settled waits until no delivery of the endpoints is pending: every attempt is
// recorded in the store.
func settled(ctx context.Context, base string, ids []string) error {
	for _, id := range ids {
		for {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/webhooks/"+id+"/deliveries?status=pending&limit=1", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			var page struct{ Deliveries []json.RawMessage }
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if len(page.Deliveries) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// WebhookThroughput publishes events to a channel one endpoint subscribes to,
// as fast as publishers can, and measures until every delivery's attempt is
// recorded as succeeded.
func WebhookThroughput(ctx context.Context, base, channel string, events, publishers int) (WebhookResult, error) {
	r, err := startReceiver()
	if err != nil {
		return WebhookResult{}, err
	}
	defer r.close()
	id, err := r.endpoint(ctx, base, "/fast", channel)
	if err != nil {
		return WebhookResult{}, err
	}
	start := time.Now()
	if err := publish(ctx, base, channel, events, publishers); err != nil {
		return WebhookResult{}, err
	}
	if err := settled(ctx, base, []string{id}); err != nil {
		return WebhookResult{}, err
	}
	el := time.Since(start)
	return r.result("webhooks: burst, every attempt stored", 1, events, el)
}

func (r *receiver) result(name string, endpoints, events int, el time.Duration) (WebhookResult, error) {
	if n := r.bad.Load(); n > 0 {
		return WebhookResult{}, fmt.Errorf("%d deliveries failed verification", n)
	}
	lat := r.latencies("/fast")
	p50, p99, _ := percentiles(lat)
	n := int64(len(lat))
	return WebhookResult{Name: name, Endpoints: endpoints, Events: events, Deliveries: n, Seconds: el.Seconds(),
		PerSecond: float64(n) / el.Seconds(), P50ms: p50, P99ms: p99}, nil
}

// WebhookBaseline is the same receiver fed signed requests by a plain net/http
// client with publishers at once: the most a sender with no store could do.
func WebhookBaseline(ctx context.Context, events, publishers int) (WebhookResult, error) {
	r, err := startReceiver()
	if err != nil {
		return WebhookResult{}, err
	}
	defer r.close()
	secret := signing.NewSecret()
	r.secrets["/fast"] = secret
	hc := &http.Client{Transport: NewTransport(publishers)}
	start := time.Now()
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < events; i += publishers {
				body := fmt.Appendf(nil, `{"type":"tick","timestamp":"2026-01-01T00:00:00Z","data":{"data":{"t":%d}}}`, time.Now().UnixNano())
				req, _ := http.NewRequestWithContext(ctx, "POST", r.url+"/fast", bytes.NewReader(body))
				signing.SetHeaders(req.Header, fmt.Sprintf("msg_%d", i), time.Now(), body, secret)
				if resp, err := hc.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	return r.result("baseline: net/http sender, nothing stored", 1, events, time.Since(start))
}

// steady publishes rate events a second for d, each on its own goroutine at its
// tick, and returns how many it published.
func steady(ctx context.Context, base, channel string, rate int, d time.Duration) (int, error) {
	hc := &http.Client{Transport: NewTransport(64)}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.After(d)
	var wg sync.WaitGroup
	var failed atomic.Int64
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-end:
			wg.Wait()
			if f := failed.Load(); f > 0 {
				return n, fmt.Errorf("%d publishes failed", f)
			}
			return n, nil
		case <-tick.C:
			n++
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if !publishOne(ctx, hc, base, channel, i) {
					failed.Add(1)
				}
			}(n)
		}
	}
}

// WebhookSteady publishes rate events a second for d to fast endpoints (with one
// that never answers beside them when hang) and measures the fast ones'
// publish-to-first-attempt latency.
func WebhookSteady(ctx context.Context, base, channel string, fast int, hang bool, rate int, d time.Duration) (WebhookResult, error) {
	r, err := startReceiver()
	if err != nil {
		return WebhookResult{}, err
	}
	defer r.close()
	var ids []string
	for i := range fast {
		id, err := r.endpoint(ctx, base, fmt.Sprintf("/fast%d", i), channel)
		if err != nil {
			return WebhookResult{}, err
		}
		ids = append(ids, id)
	}
	name := fmt.Sprintf("webhooks: steady %d events/s → %d endpoints", rate, fast)
	if hang {
		if _, err := r.endpoint(ctx, base, "/hang", channel); err != nil {
			return WebhookResult{}, err
		}
		name += " + 1 that never answers"
	}
	events, err := steady(ctx, base, channel, rate, d)
	if err != nil {
		return WebhookResult{}, err
	}
	if err := settled(ctx, base, ids); err != nil {
		return WebhookResult{}, err
	}
	res, err := r.result(name, fast+btoi(hang), events, d)
	return res, err
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
