package config

import (
	"net"
	"net/url"
	"time"

	"github.com/errandhq/errand"
)

// Metrics says how errand serves Prometheus metrics.
type Metrics struct {
	// Enabled serves GET /metrics. Defaults to true.
	Enabled *bool `yaml:"enabled"`
	// Listen, when set, serves /metrics on this address of its own (like
	// 127.0.0.1:9090), without authentication (keep it off the public
	// network), and not on the API's. Empty by default: /metrics is on the
	// API's address and takes metrics:read@* (open in development mode).
	Listen string `yaml:"listen"`
	// TenantLabels adds a tenant label to the job metrics: one series per
	// tenant, so only for a bounded number of tenants. Defaults to false.
	TenantLabels bool `yaml:"tenant_labels"`
	// QueueInterval is the longest a scrape reuses the last reading of the
	// queue's depth, age and running jobs (one store query per interval at
	// most). Defaults to 5s.
	QueueInterval Duration `yaml:"queue_interval"`
}

// On reports whether metrics are served.
func (m Metrics) On() bool { return m.Enabled == nil || *m.Enabled }

// Tracing says where OpenTelemetry traces go.
type Tracing struct {
	// Endpoint is the OTLP/HTTP collector, such as http://localhost:4318
	// (spans go to its /v1/traces unless the URL has a path). Empty by
	// default: no spans are recorded, though requests' traceparent still
	// reaches jobs, workers and webhooks.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces recorded, 0 to 1; a request that
	// arrives with a traceparent keeps its caller's decision. Defaults to 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// Headers are sent with every export (an API key for a hosted collector).
	Headers map[string]string `yaml:"headers"`
	// ServiceName names errand in the traces. Defaults to "errand".
	ServiceName string `yaml:"service_name"`
}

// Usage tunes usage analytics (GET /v1/usage).
type Usage struct {
	// Enabled records usage and serves GET /v1/usage. Defaults to true.
	Enabled *bool `yaml:"enabled"`
	// MinuteRetention keeps usage by the minute. Defaults to 48h.
	MinuteRetention Duration `yaml:"minute_retention"`
	// HourRetention keeps usage by the hour. Defaults to 90d.
	HourRetention Duration `yaml:"hour_retention"`
	// FlushInterval is how often a node writes the usage it counted. Defaults to 5s.
	FlushInterval Duration `yaml:"flush_interval"`
}

// On reports whether usage is recorded.
func (u Usage) On() bool { return u.Enabled == nil || *u.Enabled }

func (c *Config) telemetryDefaults() {
	c.Metrics.QueueInterval = orD(c.Metrics.QueueInterval, errand.DefaultMetricsQueueInterval)
	if c.Tracing.SampleRatio == nil {
		r := errand.DefaultTracingSampleRatio
		c.Tracing.SampleRatio = &r
	}
	c.Tracing.ServiceName = or(c.Tracing.ServiceName, "errand")
	c.Usage.MinuteRetention = orD(c.Usage.MinuteRetention, errand.DefaultUsageMinuteRetention)
	c.Usage.HourRetention = orD(c.Usage.HourRetention, errand.DefaultUsageHourRetention)
	c.Usage.FlushInterval = orD(c.Usage.FlushInterval, errand.DefaultUsageFlushInterval)
}

func (c *Config) validateTelemetry(bad func(path []string, format string, args ...any)) {
	if l := c.Metrics.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			bad([]string{"metrics", "listen"}, "%q is not host:port (like 127.0.0.1:9090)", l)
		} else if l == c.Listen {
			bad([]string{"metrics", "listen"}, "must not be the API's address (listen); leave it empty to serve /metrics there")
		}
	}
	if d := c.Metrics.QueueInterval; d < Duration(100*time.Millisecond) || d > Duration(time.Hour) {
		bad([]string{"metrics", "queue_interval"}, "must be between 100ms and 1h")
	}
	if e := c.Tracing.Endpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad([]string{"tracing", "endpoint"}, "%q is not an http:// or https:// URL (the collector's OTLP/HTTP endpoint, like http://localhost:4318)", e)
		}
	}
	if r := *c.Tracing.SampleRatio; !(r >= 0 && r <= 1) {
		bad([]string{"tracing", "sample_ratio"}, "must be between 0 and 1")
	}
	u := c.Usage
	if u.MinuteRetention < Duration(time.Hour) {
		bad([]string{"usage", "minute_retention"}, "must be at least 1h")
	}
	if u.HourRetention < Duration(24*time.Hour) {
		bad([]string{"usage", "hour_retention"}, "must be at least 24h")
	}
	if u.FlushInterval < Duration(100*time.Millisecond) || u.FlushInterval > Duration(time.Minute) {
		bad([]string{"usage", "flush_interval"}, "must be between 100ms and 1m")
	}
}
