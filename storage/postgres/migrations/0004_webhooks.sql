-- Webhook endpoints: URLs subscribed to a tenant's events.
CREATE TABLE webhook_endpoints (
  id                  TEXT PRIMARY KEY,
  tenant              TEXT NOT NULL,
  url                 TEXT NOT NULL,
  description         TEXT NOT NULL DEFAULT '',
  events              BYTEA NOT NULL,          -- JSON array of filters
  disabled            BOOLEAN NOT NULL DEFAULT false,
  disabled_reason     TEXT NOT NULL DEFAULT '',
  rate_limit          INTEGER NOT NULL DEFAULT 0,
  failing_since       BIGINT,                 -- µs since epoch
  secret              TEXT NOT NULL,
  previous_secret     TEXT NOT NULL DEFAULT '',
  previous_expires_at BIGINT,
  created_at          BIGINT NOT NULL,
  updated_at          BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant, id);

-- Deliveries are the outbox: written in the same transaction as their event, one
-- per event and endpoint (or job callback). A pending delivery's next_attempt_at
-- is also its claim: the node sending it pushes it past the request timeout.
CREATE TABLE webhook_deliveries (
  id              TEXT PRIMARY KEY,
  tenant          TEXT NOT NULL,
  endpoint_id     TEXT NOT NULL DEFAULT '',
  url             TEXT NOT NULL DEFAULT '',
  job_id          TEXT NOT NULL DEFAULT '',
  event_type      TEXT NOT NULL,
  payload         BYTEA NOT NULL,
  status          TEXT NOT NULL,
  attempt_count   INTEGER NOT NULL DEFAULT 0,
  step            INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT,
  last_attempt_at BIGINT,
  created_at      BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id, id) WHERE job_id <> '';
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at) WHERE status <> 'pending';

CREATE TABLE webhook_attempts (
  delivery_id TEXT NOT NULL,
  n           INTEGER NOT NULL,
  time        BIGINT NOT NULL,
  status_code INTEGER NOT NULL,
  latency_us  BIGINT NOT NULL,
  error       TEXT NOT NULL DEFAULT '',
  response    TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (delivery_id, n)
);
