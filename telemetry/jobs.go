package telemetry

import (
	"context"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// jobMetrics are the job counters and histograms, by operation (and tenant
// with tenant labels).
type jobMetrics struct {
	submitted, started, succeeded, failed, canceled, expired, timeouts *prometheus.CounterVec
	retried                                                            *prometheus.CounterVec
	wait, run, total                                                   *prometheus.HistogramVec
	tenants                                                            bool
}

// retryReasons are the values of errand_jobs_retried_total's reason label.
var retryReasons = []string{"failed", "lease_expired", "timeout", "released", "manual"}

func newJobMetrics(r *prometheus.Registry, tenants bool) jobMetrics {
	labels := []string{"operation"}
	if tenants {
		labels = append(labels, "tenant")
	}
	c := func(name, help string) *prometheus.CounterVec { return counterVec(r, name, help, labels...) }
	h := func(name, help string) *prometheus.HistogramVec {
		return histogramVec(r, name, help, jobBuckets, labels...)
	}
	return jobMetrics{
		tenants:   tenants,
		submitted: c("errand_jobs_submitted_total", "Jobs submitted (job.created committed), by operation."),
		started:   c("errand_jobs_started_total", "Attempts started (jobs leased), by operation."),
		succeeded: c("errand_jobs_succeeded_total", "Jobs that succeeded, by operation."),
		failed:    c("errand_jobs_failed_total", "Jobs that failed for good (no attempt left, or not to be retried), by operation."),
		canceled:  c("errand_jobs_canceled_total", "Jobs canceled, by operation."),
		expired:   c("errand_jobs_lease_expirations_total", "Attempts ended because their lease expired (no heartbeat or completion in time), by operation."),
		timeouts:  c("errand_jobs_timeouts_total", "Attempts ended because they ran past the operation's timeout, by operation."),
		retried: counterVec(r, "errand_jobs_retried_total", "Jobs queued again (job.retrying), by operation and why: "+
			"failed, lease_expired, timeout (an attempt ended so), released (by its worker), manual (POST …/retry).", append(labels, "reason")...),
		wait:  h("errand_job_queue_wait_seconds", "How long jobs waited to start once due (run_at → started), by operation."),
		run:   h("errand_job_run_duration_seconds", "How long attempts ran (started → ended), by operation."),
		total: h("errand_job_duration_seconds", "Jobs' end-to-end time (created → finished), by operation."),
	}
}

// opMetrics are one operation's (and tenant's) children of jobMetrics.
type opMetrics struct {
	submitted, started, succeeded, failed, canceled, expired, timeouts prometheus.Counter
	retried                                                            map[string]prometheus.Counter
	wait, run, total                                                   prometheus.Observer
}

// children resolves (and so creates, at zero) an operation's series.
func (j *jobMetrics) children(values ...string) *opMetrics {
	o := &opMetrics{submitted: j.submitted.WithLabelValues(values...), started: j.started.WithLabelValues(values...),
		succeeded: j.succeeded.WithLabelValues(values...), failed: j.failed.WithLabelValues(values...),
		canceled: j.canceled.WithLabelValues(values...), expired: j.expired.WithLabelValues(values...),
		timeouts: j.timeouts.WithLabelValues(values...), retried: map[string]prometheus.Counter{},
		wait: j.wait.WithLabelValues(values...), run: j.run.WithLabelValues(values...), total: j.total.WithLabelValues(values...)}
	for _, r := range retryReasons {
		o.retried[r] = j.retried.WithLabelValues(append(values, r)...)
	}
	return o
}

// forJob is the series a job's events count in.
func (m *Metrics) forJob(j *errand.Job) *opMetrics {
	op := j.Operation
	if !m.opSet[op] {
		op = otherOp
	}
	if !m.cfg.TenantLabels {
		if o := m.ops[op]; o != nil {
			return o
		}
		return m.other
	}
	key := op + "\x00" + j.Tenant
	if o, ok := m.byTenant.Load(key); ok {
		return o.(*opMetrics)
	}
	o, _ := m.byTenant.LoadOrStore(key, m.jobs.children(op, j.Tenant))
	return o.(*opMetrics)
}

// jobEvent counts what a committed job event says happened.
func (m *Metrics) jobEvent(e *errand.Event) {
	j := e.Job
	o := m.forJob(j)
	switch e.Type {
	case errand.EventJobCreated:
		o.submitted.Inc()
	case errand.EventJobStarted:
		o.started.Inc()
		if j.StartedAt != nil {
			o.wait.Observe(seconds(j.StartedAt.Sub(j.RunAt)))
		}
	case errand.EventJobRetrying:
		reason := RetryReason(j)
		o.retried[reason].Inc()
		if reason != "released" && reason != "manual" {
			m.attemptEnded(o, j, e.Time)
		}
	case errand.EventJobSucceeded, errand.EventJobFailed:
		if e.Type == errand.EventJobSucceeded {
			o.succeeded.Inc()
		} else {
			o.failed.Inc()
		}
		m.attemptEnded(o, j, e.Time)
		o.total.Observe(seconds(e.Time.Sub(j.CreatedAt)))
	case errand.EventJobCanceled:
		o.canceled.Inc()
		if j.CancelRequested { // it was running: its attempt ended now
			m.attemptEnded(o, j, e.Time)
		}
		o.total.Observe(seconds(e.Time.Sub(j.CreatedAt)))
	}
}

// attemptEnded observes the run time of an attempt that ended at end, and
// counts it when its lease expired or it timed out.
func (m *Metrics) attemptEnded(o *opMetrics, j *errand.Job, end time.Time) {
	if j.StartedAt != nil {
		o.run.Observe(seconds(end.Sub(*j.StartedAt)))
	}
	if j.Error != nil {
		switch j.Error.Code {
		case errand.ECODELEASEEXPIRED:
			o.expired.Inc()
		case errand.ECODETIMEOUT:
			o.timeouts.Inc()
		}
	}
}

// RetryReason says why a job in its job.retrying event runs again: its
// attempt failed (lease_expired and timeout when errand ended it), its worker
// released it, or someone asked (manual).
func RetryReason(j *errand.Job) string {
	switch {
	case j.StartedAt == nil:
		return "released" // job.Release forgets when the attempt started
	case j.Error == nil:
		return "manual" // job.Retry clears the error
	case j.Error.Code == errand.ECODELEASEEXPIRED:
		return "lease_expired"
	case j.Error.Code == errand.ECODETIMEOUT:
		return "timeout"
	}
	return "failed"
}

func seconds(d time.Duration) float64 { return max(d, 0).Seconds() }

// queueCollector reports the queue's gauges, read from the store at most once
// per interval (the scrape that finds the reading older queries; others
// reuse it).
type queueCollector struct {
	m                     *Metrics
	queued, oldest, rdesc *prometheus.Desc
	mu                    sync.Mutex
	at                    time.Time
	last                  []storage.QueueStat
}

func newQueueCollector(m *Metrics) *queueCollector {
	return &queueCollector{m: m,
		queued: prometheus.NewDesc("errand_jobs_queued", "Jobs queued (due, waiting for a worker), by operation: the store's, "+
			"so every node reports the same (aggregate with max).", []string{"operation"}, nil),
		oldest: prometheus.NewDesc("errand_jobs_oldest_queued_age_seconds", "How long the longest-waiting queued job has been due, "+
			"by operation (0 when none is queued): the store's, every node reports the same.", []string{"operation"}, nil),
		rdesc: prometheus.NewDesc("errand_jobs_running", "Jobs running (leased), by operation: the store's, every node reports the same.",
			[]string{"operation"}, nil)}
}

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.queued
	ch <- q.oldest
	ch <- q.rdesc
}

// Collect reports every declared operation (zero when it has nothing), and
// the jobs of operations no longer declared as "other".
func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	stats, now := q.read()
	queued, running, oldest := map[string]float64{}, map[string]float64{}, map[string]time.Time{}
	for _, op := range q.m.cfg.Operations {
		queued[op], running[op] = 0, 0
	}
	for _, s := range stats {
		op := s.Operation
		if !q.m.opSet[op] {
			op = otherOp
		}
		switch s.Status {
		case errand.StatusQueued:
			queued[op] += float64(s.Count)
			if o, ok := oldest[op]; !ok || s.Oldest.Before(o) {
				oldest[op] = s.Oldest
			}
		case errand.StatusRunning:
			running[op] += float64(s.Count)
		}
	}
	for op, n := range queued {
		ch <- prometheus.MustNewConstMetric(q.queued, prometheus.GaugeValue, n, op)
		age := 0.0
		if o, ok := oldest[op]; ok {
			age = seconds(now.Sub(o))
		}
		ch <- prometheus.MustNewConstMetric(q.oldest, prometheus.GaugeValue, age, op)
	}
	for op, n := range running {
		ch <- prometheus.MustNewConstMetric(q.rdesc, prometheus.GaugeValue, n, op)
	}
}

// read returns the last reading, reading again when it is older than the
// interval; a failed read keeps the last one (and is logged).
func (q *queueCollector) read() ([]storage.QueueStat, time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	if q.at.IsZero() || now.Sub(q.at) >= q.m.cfg.QueueInterval {
		stats, err := q.m.cfg.Queue()
		if err != nil {
			q.m.cfg.Log.Warn("metrics: reading the queue", "err", err)
		} else {
			q.last = stats
		}
		q.at = now
	}
	return q.last, now
}

// queueTimeout bounds one queue reading.
const queueTimeout = 5 * time.Second

// QueueReader makes MetricsConfig.Queue from a store's reader.
func QueueReader(r storage.Reader) func() ([]storage.QueueStat, error) {
	return func() ([]storage.QueueStat, error) {
		ctx, cancel := context.WithTimeout(context.Background(), queueTimeout)
		defer cancel()
		return r.QueueStats(ctx)
	}
}
