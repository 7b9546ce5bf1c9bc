package telemetry

import (
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// storeMetrics are the store's commits and failures.
type storeMetrics struct {
	commit, calls prometheus.Histogram
	errors        *prometheus.CounterVec
}

func newStoreMetrics(r *prometheus.Registry) storeMetrics {
	s := storeMetrics{
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "errand_store_commit_duration_seconds",
			Help: "How long this node's store transactions took, from BEGIN to the end of COMMIT (the fsync on SQLite).", Buckets: commitBuckets}),
		calls: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "errand_store_commit_calls",
			Help: "Transactions (WithTx calls) per database transaction: group commit at work.", Buckets: callBuckets}),
		errors: counterVec(r, "errand_store_errors_total", "Store transactions that failed as a whole, by error code (unavailable, storage_full, internal).", "code"),
	}
	r.MustRegister(s.commit, s.calls)
	for _, c := range []string{"unavailable", "storage_full", "internal"} {
		s.errors.WithLabelValues(c)
	}
	return s
}

// storeCollector reports the driver's gauges at scrape time.
type storeCollector struct{ stats func() storage.Stats }

var (
	poolConnsDesc = prometheus.NewDesc("errand_store_pool_connections", "The store's pooled connections, by state: acquired or idle.",
		[]string{"state"}, nil)
	poolMaxDesc      = prometheus.NewDesc("errand_store_pool_max_connections", "The store's connection pool size.", nil, nil)
	poolAcquireDesc  = prometheus.NewDesc("errand_store_pool_acquires_total", "Connections handed out by the pool.", nil, nil)
	poolWaitedDesc   = prometheus.NewDesc("errand_store_pool_acquire_waits_total", "Connections that had to wait for the pool.", nil, nil)
	poolWaitTimeDesc = prometheus.NewDesc("errand_store_pool_acquire_wait_seconds_total", "Time spent waiting for a pooled connection.", nil, nil)
	tailerBehindDesc = prometheus.NewDesc("errand_store_tailer_behind_events",
		"Committed events the tailer has read but not yet passed on (held back by an unexplained gap).", nil, nil)
	tailerGapDesc = prometheus.NewDesc("errand_store_tailer_lag_seconds",
		"How long the tailer has waited on its oldest gap in the event log (0 when none): how late other nodes' events reach this node's streams.", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConnsDesc, poolMaxDesc, poolAcquireDesc, poolWaitedDesc, poolWaitTimeDesc, tailerBehindDesc, tailerGapDesc} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	if p := st.Pool; p != nil {
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(p.Acquired), "acquired")
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(p.Idle), "idle")
		ch <- prometheus.MustNewConstMetric(poolMaxDesc, prometheus.GaugeValue, float64(p.Max))
		ch <- prometheus.MustNewConstMetric(poolAcquireDesc, prometheus.CounterValue, float64(p.Acquires))
		ch <- prometheus.MustNewConstMetric(poolWaitedDesc, prometheus.CounterValue, float64(p.Waited))
		ch <- prometheus.MustNewConstMetric(poolWaitTimeDesc, prometheus.CounterValue, p.WaitTime.Seconds())
	}
	if t := st.Tailer; t != nil {
		ch <- prometheus.MustNewConstMetric(tailerBehindDesc, prometheus.GaugeValue, float64(t.Behind))
		ch <- prometheus.MustNewConstMetric(tailerGapDesc, prometheus.GaugeValue, t.GapAge.Seconds())
	}
}

// httpMetrics are the requests by route pattern, method and status class.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	children sync.Map // httpKey → *httpChild
}

type httpKey struct {
	route, method string
	class         int
}

type httpChild struct {
	count prometheus.Counter
	dur   prometheus.Observer
}

func newHTTPMetrics(r *prometheus.Registry) httpMetrics {
	return httpMetrics{
		requests: counterVec(r, "errand_http_requests_total",
			"HTTP requests answered, by route pattern (never a path with ids), method and status class (2xx … 5xx).", "route", "method", "code"),
		duration: histogramVec(r, "errand_http_request_duration_seconds",
			"How long HTTP requests took to answer, by route pattern and method (event streams are not timed).", requestBuckets, "route", "method"),
	}
}

// methods are the methods that are their own label value; any other is "other".
var methods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}

// Request counts one answered request. pattern is its route's pattern as the
// mux registered it ("POST /v1/jobs", "GET /v1/jobs/{id}", "/" for no
// route); stream marks an event stream, counted but not timed.
func (m *Metrics) Request(pattern, method string, status int, d time.Duration, stream bool) {
	route := pattern
	if pm, path, ok := strings.Cut(pattern, " "); ok {
		route, method = path, pm
	}
	if !methods[method] {
		method = "other"
	}
	if route == "" {
		route = "/"
	}
	key := httpKey{route, method, min(max(status/100, 1), 5)}
	c, ok := m.http.children.Load(key)
	if !ok {
		code := []string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}[key.class]
		c, _ = m.http.children.LoadOrStore(key, &httpChild{count: m.http.requests.WithLabelValues(route, method, code),
			dur: m.http.duration.WithLabelValues(route, method)})
	}
	hc := c.(*httpChild)
	hc.count.Inc()
	if !stream {
		hc.dur.Observe(d.Seconds())
	}
}

// streamMetrics are the event-stream connections of each transport.
type streamMetrics struct {
	conns, subs *prometheus.GaugeVec
	resets      *prometheus.CounterVec
}

// Transports are the stream transport labels errand knows; a transport
// built later adds its own name.
var Transports = []string{"sse", "websocket", "graphql-ws", "graphql-sse"}

func newStreamMetrics(r *prometheus.Registry) streamMetrics {
	s := streamMetrics{
		conns: gaugeVec(r, "errand_stream_connections", "Event-stream connections open on this node, by transport (sse, websocket, graphql-ws, graphql-sse).", "transport"),
		subs:  gaugeVec(r, "errand_stream_subscriptions", "Subscriptions open on this node's event streams, by transport.", "transport"),
		resets: counterVec(r, "errand_stream_resets_total",
			"Subscriptions reset because they fell behind (their buffer overflowed, or their cursor was older than the history), by transport.", "transport"),
	}
	for _, t := range Transports {
		s.conns.WithLabelValues(t)
		s.subs.WithLabelValues(t)
		s.resets.WithLabelValues(t)
	}
	return s
}

// StreamOpened counts an event-stream connection of transport as open.
func (m *Metrics) StreamOpened(transport string) { m.streams.conns.WithLabelValues(transport).Inc() }

// StreamClosed counts an event-stream connection of transport as closed.
func (m *Metrics) StreamClosed(transport string) { m.streams.conns.WithLabelValues(transport).Dec() }

// Subscriptions adds delta (negative when they end) to transport's open subscriptions.
func (m *Metrics) Subscriptions(transport string, delta int) {
	m.streams.subs.WithLabelValues(transport).Add(float64(delta))
}

// StreamReset counts a subscription of transport reset for falling behind.
func (m *Metrics) StreamReset(transport string) { m.streams.resets.WithLabelValues(transport).Inc() }

// webhookMetrics are the delivery attempts and the endpoints disabled.
type webhookMetrics struct {
	attempts *prometheus.CounterVec
	latency  prometheus.Histogram
	disabled *prometheus.CounterVec
}

// Outcomes are the values of errand_webhook_deliveries_total's outcome label.
var Outcomes = []string{"succeeded", "failed", "timeout", "error", "gone", "skipped"}

func newWebhookMetrics(r *prometheus.Registry) webhookMetrics {
	w := webhookMetrics{
		attempts: counterVec(r, "errand_webhook_deliveries_total", "Webhook and callback delivery attempts, by outcome: succeeded (2xx), "+
			"failed (another answer), timeout, error (no answer: refused, reset, SSRF guard), gone (410: endpoint disabled), "+
			"skipped (endpoint disabled or deleted before the attempt).", "outcome"),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "errand_webhook_delivery_duration_seconds",
			Help: "How long delivery attempts took, from sending to the end of the answer.", Buckets: webhookBuckets}),
		disabled: counterVec(r, "errand_webhook_endpoints_disabled_total",
			"Webhook endpoints errand disabled, by reason: gone (answered 410) or failing (failed every attempt for webhooks.disable_after).", "reason"),
	}
	r.MustRegister(w.latency)
	for _, o := range Outcomes {
		w.attempts.WithLabelValues(o)
	}
	for _, reason := range []string{"gone", "failing"} {
		w.disabled.WithLabelValues(reason)
	}
	return w
}

// Attempted counts a delivery attempt and its latency (none for skipped).
func (m *Metrics) Attempted(tenant, outcome string, latency time.Duration) {
	m.webhooks.attempts.WithLabelValues(outcome).Inc()
	if outcome != "skipped" {
		m.webhooks.latency.Observe(latency.Seconds())
	}
}

// EndpointDisabled counts an endpoint errand disabled.
func (m *Metrics) EndpointDisabled(tenant, reason string) {
	m.webhooks.disabled.WithLabelValues(reason).Inc()
}

// authMetrics are the failed authentications and the denials.
type authMetrics struct {
	failures, denials *prometheus.CounterVec
}

// FailureReasons are the values of errand_auth_failures_total's reason label.
var FailureReasons = []string{"missing", "scheme", "token_in_url", "api_key", "jwt", "ticket"}

func newAuthMetrics(r *prometheus.Registry) authMetrics {
	a := authMetrics{
		failures: counterVec(r, "errand_auth_failures_total", "Failed authentications (401), by what failed: missing (no credential), "+
			"scheme (not Bearer), token_in_url, api_key, jwt (a token errand did not accept), ticket.", "reason"),
		denials: counterVec(r, "errand_auth_denials_total", "Refused requests of authenticated callers (403, or a 404 hiding another tenant's resource), "+
			"by the permission refused (jobs:submit, workers:lease, …).", "action"),
	}
	for _, reason := range FailureReasons {
		a.failures.WithLabelValues(reason)
	}
	return a
}

// AuthFailed counts a failed authentication.
func (m *Metrics) AuthFailed(reason string) { m.auth.failures.WithLabelValues(reason).Inc() }

// Denied counts a refusal of action (a permission, never its object).
func (m *Metrics) Denied(action string) { m.auth.denials.WithLabelValues(action).Inc() }

// BridgeSample is one bridge route's state as the bridges report it, read
// when /metrics is scraped.
type BridgeSample struct {
	Bridge, Route string
	// Direction is out (a publish route, or the replies route) or in (a
	// subscribe route).
	Direction string
	Up        bool
	// Messages and Errors are counted since this node started.
	Messages, Errors uint64
	// Lag is how many log positions the log's head is past a publish
	// route's cursor (-1: not known here, e.g. a standby's route).
	Lag int64
}

// bridgeCollector reads the bridges' routes at scrape time.
type bridgeCollector struct {
	mu                        sync.Mutex
	source                    func() []BridgeSample
	messages, errors, lag, up *prometheus.Desc
}

func newBridgeCollector(r *prometheus.Registry) *bridgeCollector {
	c := &bridgeCollector{
		messages: prometheus.NewDesc("errand_bridge_messages_total", "Messages a broker bridge's route moved since this node started, by bridge, route and direction: out (confirmed by the broker) or in (committed).", []string{"bridge", "route", "direction"}, nil),
		errors:   prometheus.NewDesc("errand_bridge_errors_total", "Failures of a bridge's route (a publish not confirmed, a commit that failed), each retried.", []string{"bridge", "route", "direction"}, nil),
		lag:      prometheus.NewDesc("errand_bridge_lag_events", "How many log positions a bridge's publish route is behind the log's head (on the node that runs the route).", []string{"bridge", "route"}, nil),
		up:       prometheus.NewDesc("errand_bridge_up", "Whether a bridge's connection to its broker is up (1) or not (0).", []string{"bridge"}, nil),
	}
	r.MustRegister(c)
	return c
}

func (c *bridgeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.messages
	ch <- c.errors
	ch <- c.lag
	ch <- c.up
}

func (c *bridgeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	source := c.source
	c.mu.Unlock()
	if source == nil {
		return
	}
	up := map[string]bool{}
	for _, s := range source() {
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(s.Messages), s.Bridge, s.Route, s.Direction)
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(s.Errors), s.Bridge, s.Route, s.Direction)
		if s.Lag >= 0 && s.Direction == "out" {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.Lag), s.Bridge, s.Route)
		}
		up[s.Bridge] = up[s.Bridge] || s.Up
	}
	for b, u := range up {
		v := 0.0
		if u {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, v, b)
	}
}

// WatchBridges has /metrics report the bridges' routes, read from source at
// each scrape.
func (m *Metrics) WatchBridges(source func() []BridgeSample) {
	m.bridges.mu.Lock()
	defer m.bridges.mu.Unlock()
	m.bridges.source = source
}
