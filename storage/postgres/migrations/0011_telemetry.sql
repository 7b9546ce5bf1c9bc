-- Traces continue across nodes and restarts: a job keeps the W3C trace
-- context of the request that submitted it, a webhook delivery that of its
-- event (both NULL when there was none).
ALTER TABLE jobs ADD COLUMN trace_parent TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN trace_parent TEXT;

-- Usage analytics: per tenant, operation ('' for none) and bucket (step is
-- its width in seconds: 60 or 3600; bucket its start, µs since epoch), one row
-- per errand node (each node writes only its own rows, whole; readers sum
-- them). run_time and queue_wait are histograms encoded by package telemetry.
CREATE TABLE usage (
  tenant         TEXT NOT NULL,
  operation      TEXT NOT NULL,
  step           INTEGER NOT NULL,
  bucket         BIGINT NOT NULL,
  node           TEXT NOT NULL,
  submitted      BIGINT NOT NULL DEFAULT 0,
  succeeded      BIGINT NOT NULL DEFAULT 0,
  failed         BIGINT NOT NULL DEFAULT 0,
  canceled       BIGINT NOT NULL DEFAULT 0,
  events         BIGINT NOT NULL DEFAULT 0,
  deliveries     BIGINT NOT NULL DEFAULT 0,
  artifact_bytes BIGINT NOT NULL DEFAULT 0,
  run_time       BYTEA,
  queue_wait     BYTEA,
  PRIMARY KEY (tenant, step, bucket, operation, node)
);
-- Retention deletes a step's oldest buckets first.
CREATE INDEX usage_expiry ON usage (step, bucket);
