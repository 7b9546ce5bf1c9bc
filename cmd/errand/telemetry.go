package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/config"
	"github.com/errandhq/errand/httpapi"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/postgres"
	"github.com/errandhq/errand/telemetry"
	"github.com/errandhq/errand/webhook"
)

// observability is what errand tells about itself: metrics, traces and usage
// analytics, each optional.
type observability struct {
	// observers hear the store's commits; the store takes it when it opens,
	// the parts below are added once made.
	observers telemetry.Observers
	tracing   *telemetry.Tracing
	metrics   *telemetry.Metrics // nil: metrics off
	usage     *telemetry.Usage   // nil: usage off
}

// newTracing makes the tracer (a no-op without tracing.endpoint).
func (o *observability) newTracing(cfg *config.Config, log *slog.Logger) error {
	t := cfg.Tracing
	var err error
	o.tracing, err = telemetry.NewTracing(&telemetry.TracingConfig{Endpoint: t.Endpoint, Headers: t.Headers,
		SampleRatio: t.SampleRatio, ServiceName: t.ServiceName, Version: buildVersion(), Log: log})
	if err == nil && o.tracing.Enabled() {
		o.observers.Add(o.tracing) // job spans from the commits
	}
	return err
}

// build makes the metrics and the usage recorder over the open store.
func (o *observability) build(cfg *config.Config, b *backing, store storage.Store, hub telemetry.Hub,
	ops []string, channels *channel.Service, log *slog.Logger) error {
	if cfg.Metrics.On() {
		mc := &telemetry.MetricsConfig{Operations: ops, TenantLabels: cfg.Metrics.TenantLabels,
			ChannelOf: func(name string) string {
				ch, err := channels.Find(name)
				if err != nil {
					return ""
				}
				return ch.Pattern
			},
			Queue: telemetry.QueueReader(store), QueueInterval: time.Duration(cfg.Metrics.QueueInterval), Hub: hub,
			Version: buildVersion(), Revision: revision(), Log: log}
		if pg, ok := b.store.(*postgres.Store); ok {
			mc.Store = pg.Stats
		}
		var err error
		if o.metrics, err = telemetry.NewMetrics(mc); err != nil {
			return err
		}
		o.observers.Add(o.metrics)
	}
	if cfg.Usage.On() {
		u := cfg.Usage
		var err error
		o.usage, err = telemetry.NewUsage(store, &telemetry.UsageConfig{MinuteRetention: time.Duration(u.MinuteRetention),
			HourRetention: time.Duration(u.HourRetention), FlushInterval: time.Duration(u.FlushInterval), Lead: b.lead, Log: log})
		if err != nil {
			return err
		}
		o.observers.Add(o.usage)
	}
	return nil
}

// revision is the VCS revision the binary was built from, when recorded.
func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

// webhookMeter hears delivery attempts for metrics and usage (nil: neither).
func (o *observability) webhookMeter() webhook.Meter {
	var ms webhookMeters
	if o.metrics != nil {
		ms = append(ms, o.metrics)
	}
	if o.usage != nil {
		ms = append(ms, o.usage)
	}
	if len(ms) == 0 {
		return nil
	}
	return ms
}

// webhookMeters tells each Meter.
type webhookMeters []webhook.Meter

func (ms webhookMeters) Attempted(tenant, outcome string, latency time.Duration) {
	for _, m := range ms {
		m.Attempted(tenant, outcome, latency)
	}
}

func (ms webhookMeters) EndpointDisabled(tenant, reason string) {
	for _, m := range ms {
		m.EndpointDisabled(tenant, reason)
	}
}

// httpDeps fills what the API serves of telemetry: the meter, /metrics (on
// the API's address unless metrics.listen) and /v1/usage.
func (o *observability) httpDeps(cfg *config.Config, d *httpapi.Deps) {
	if o.metrics != nil {
		d.Meter = o.metrics
		if cfg.Metrics.Listen == "" {
			d.Metrics = o.metrics.Handler()
		}
	}
	if o.usage != nil {
		d.Usage = o.usage
	}
}

// metricsServer serves /metrics alone on metrics.listen, without
// authentication: the address is the operator's to keep private.
type metricsServer struct {
	addr    string
	handler http.Handler
	log     *slog.Logger
	srv     *http.Server
	ln      net.Listener
}

func (m *metricsServer) Start(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.handler)
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var err error
	if m.ln, err = net.Listen("tcp", m.addr); err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", m.addr, err)
	}
	go func() {
		if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("metrics server stopped", "err", err)
		}
	}()
	m.log.Info("serving metrics", "addr", m.ln.Addr().String())
	return nil
}

func (m *metricsServer) Stop(ctx context.Context) error { return m.srv.Shutdown(ctx) }
