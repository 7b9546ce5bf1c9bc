package telemetry

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsConfig says what Metrics measures. The zero value measures
// everything but the queue, the store's pool and the hub.
type MetricsConfig struct {
	// Operations are the declared operations: the values of every operation
	// label (jobs of any other, such as one no longer declared, count as
	// "other"). Each starts at zero, so rates exist from the first scrape.
	Operations []string
	// ChannelOf is the declared pattern a channel name falls under (the
	// channel label; never the name, which is unbounded). nil counts every
	// channel event as "other".
	ChannelOf func(name string) string
	// TenantLabels adds a tenant label to the job counters and histograms:
	// one series per tenant, so only for a bounded number of tenants.
	// Defaults to false.
	TenantLabels bool
	// Queue reads the queue's gauges (Reader.QueueStats) when Prometheus
	// scrapes; nil reports none.
	Queue func() ([]storage.QueueStat, error)
	// QueueInterval is the longest a scrape reuses the queue's last reading:
	// at most one query per interval, however often and by however many
	// Prometheus servers errand is scraped. Defaults to 5 seconds.
	QueueInterval time.Duration
	// Store reads the driver's gauges (PostgreSQL's pool and tailer) when
	// Prometheus scrapes; nil reports none.
	Store func() storage.Stats
	// Hub is the event hub (its open subscriptions and the subscribers it cut
	// off for falling behind); nil reports none.
	Hub Hub
	// Version and Revision are reported by errand_build_info.
	Version, Revision string
	// Log hears a queue reading that failed. Defaults to slog.Default().
	Log *slog.Logger
}

// Hub is what Metrics reads of the event hub.
type Hub interface {
	Subscribers() int
	Resets() uint64
}

// Metrics is errand's Prometheus registry and its metrics. It is a
// storage.Observer (jobs, events, commits), httpapi's Meter (requests,
// streams, authentication) and the webhook deliverer's Meter.
type Metrics struct {
	cfg MetricsConfig
	reg *prometheus.Registry

	http     httpMetrics
	jobs     jobMetrics
	store    storeMetrics
	events   map[string]prometheus.Counter // by kind
	channels *prometheus.CounterVec
	streams  streamMetrics
	webhooks webhookMetrics
	auth     authMetrics
	bridges  *bridgeCollector
	queue    *queueCollector

	opSet    map[string]bool
	ops      map[string]*opMetrics // per declared operation (no tenant labels)
	other    *opMetrics
	byTenant sync.Map // op + "\x00" + tenant → *opMetrics (tenant labels)
	chanOf   sync.Map // channel name → pattern, for up to maxCachedChannels names
	chanN    int
	chanMu   sync.Mutex
}

var _ storage.Observer = (*Metrics)(nil)

// NewMetrics makes the registry with every metric.
func NewMetrics(cfg *MetricsConfig) (*Metrics, error) {
	c := MetricsConfig{}
	if cfg != nil {
		c = *cfg
	}
	c.QueueInterval = cmp.Or(c.QueueInterval, errand.DefaultMetricsQueueInterval)
	c.Log = cmp.Or(c.Log, slog.Default())
	if c.QueueInterval < 0 {
		return nil, errors.New("metrics config: queue interval must not be negative")
	}
	m := &Metrics{cfg: c, reg: prometheus.NewRegistry(), opSet: map[string]bool{}, ops: map[string]*opMetrics{}}
	m.build()
	for _, op := range c.Operations {
		m.opSet[op] = true
		if !c.TenantLabels {
			m.ops[op] = m.jobs.children(op)
		}
	}
	if !c.TenantLabels {
		m.other = m.jobs.children(otherOp)
	}
	return m, nil
}

// otherOp is the operation label of jobs of an operation not declared.
const otherOp = "other"

// build registers every metric.
func (m *Metrics) build() {
	r := m.reg
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "errand_build_info", Help: "errand's version, revision and Go version; always 1.",
		ConstLabels: prometheus.Labels{"version": cmp.Or(m.cfg.Version, "dev"), "revision": cmp.Or(m.cfg.Revision, "unknown"),
			"goversion": runtime.Version()}})
	info.Set(1)
	r.MustRegister(info)
	m.http = newHTTPMetrics(r)
	m.jobs = newJobMetrics(r, m.cfg.TenantLabels)
	m.store = newStoreMetrics(r)
	events := counterVec(r, "errand_events_appended_total", "Events appended to the log by this node, by kind: job, channel or webhooks (endpoint events).", "kind")
	m.channels = counterVec(r, "errand_channel_events_total", "Channel events published through this node, by declared channel pattern.", "channel")
	m.streams = newStreamMetrics(r)
	m.webhooks = newWebhookMetrics(r)
	m.auth = newAuthMetrics(r)
	m.bridges = newBridgeCollector(r)
	m.events = map[string]prometheus.Counter{}
	for _, kind := range []string{"job", "channel", "webhooks"} {
		m.events[kind] = events.WithLabelValues(kind)
	}
	if m.cfg.Queue != nil {
		m.queue = newQueueCollector(m)
		r.MustRegister(m.queue)
	}
	if m.cfg.Store != nil {
		r.MustRegister(&storeCollector{stats: m.cfg.Store})
	}
	if h := m.cfg.Hub; h != nil {
		r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "errand_hub_subscriptions",
			Help: "Subscriptions to committed events open in this node's hub (SSE, WebSocket and waits)."},
			func() float64 { return float64(h.Subscribers()) }))
		r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "errand_hub_resets_total",
			Help: "Hub subscriptions cut off for falling behind their buffer (they catch up from the store)."},
			func() float64 { return float64(h.Resets()) }))
	}
}

// Handler serves the metrics in the Prometheus text format (or OpenMetrics,
// when the scraper asks).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorLog: slogPrinter{m.cfg.Log}})
}

// Registry is where the metrics are kept (for tests and for transports that
// register metrics of their own).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// slogPrinter is promhttp's error log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("metrics: " + strings.TrimSpace(fmt.Sprintln(v...)))
}

func counterVec(r *prometheus.Registry, name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	r.MustRegister(v)
	return v
}

func gaugeVec(r *prometheus.Registry, name, help string, labels ...string) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	r.MustRegister(v)
	return v
}

func histogramVec(r *prometheus.Registry, name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	r.MustRegister(v)
	return v
}

// Bucket bounds, in seconds (bytes and calls for the two that say so).
var (
	requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	jobBuckets     = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}
	commitBuckets  = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	callBuckets    = prometheus.ExponentialBuckets(1, 2, 11) // 1 … 1024
	webhookBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)

// Committed counts a commit of this node: its time and calls, its events,
// and what each job event says happened.
func (m *Metrics) Committed(c *storage.CommitStats) {
	m.store.commit.Observe(c.Duration.Seconds())
	m.store.calls.Observe(float64(c.Calls))
	for _, e := range c.Events {
		switch {
		case e.Job != nil:
			m.events["job"].Inc()
			m.jobEvent(e)
		case e.Stream == errand.StreamWebhooks:
			m.events["webhooks"].Inc()
		case strings.HasPrefix(e.Stream, "job_"):
			m.events["job"].Inc()
		default:
			m.events["channel"].Inc()
			m.channels.WithLabelValues(m.channelOf(e.Stream)).Inc()
		}
	}
}

// Failed counts a transaction that failed as a whole, by the code of its error.
func (m *Metrics) Failed(err error) {
	m.store.errors.WithLabelValues(errand.ErrorCode(err)).Inc()
}

// maxCachedChannels bounds the names whose pattern is remembered.
const maxCachedChannels = 10000

// channelOf is the declared pattern of a channel name ("other" for none).
func (m *Metrics) channelOf(name string) string {
	if p, ok := m.chanOf.Load(name); ok {
		return p.(string)
	}
	p := ""
	if m.cfg.ChannelOf != nil {
		p = m.cfg.ChannelOf(name)
	}
	p = cmp.Or(p, otherOp)
	m.chanMu.Lock()
	if m.chanN < maxCachedChannels {
		m.chanOf.Store(name, p)
		m.chanN++
	}
	m.chanMu.Unlock()
	return p
}
