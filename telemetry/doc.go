// Package telemetry is what errand tells about itself: Prometheus metrics
// (Metrics, served at GET /metrics), OpenTelemetry traces (Tracing: spans
// sent by OTLP/HTTP, W3C trace context carried by jobs across nodes and
// restarts, trace ids in the logs) and usage analytics per tenant (Usage:
// counters and mergeable duration histograms per minute and hour, kept in the
// store and summed over the nodes).
//
// It speaks to the services and to the storage seam, never to a driver's
// SQL. The numbers come from where they are cheapest and exact:
//
//   - jobs and events from the commits themselves: each part is a
//     storage.Observer, which hears every transaction this node commits with
//     its events (and the jobs they are about, in memory). Each node counts
//     its own commits only, so a counter summed over the nodes
//     (sum by (operation) (rate(errand_jobs_succeeded_total[5m]))) is the
//     cluster's, with nothing counted twice when a node's tailer passes on
//     another node's events;
//   - the queue's depth, age and running jobs from the store, read when
//     Prometheus scrapes, at most once per QueueInterval;
//   - HTTP, streams and authentication from httpapi (Metrics is its Meter),
//     webhook deliveries from the deliverer (webhook.Meter), the store's
//     pool and tailer from the driver (storage.Stats).
//
// Transports built later (GraphQL, broker bridges) feed the same Metrics:
// StreamOpened/StreamClosed/Subscriptions/StreamReset with their transport's
// name (graphql-ws, graphql-sse); the bridges are read at each scrape through
// WatchBridges (messages, errors, lag and connection per route). A bridge's
// publishes may continue a job's trace from Event.TraceParent or the job's
// TraceParent (ContextOf).
package telemetry
