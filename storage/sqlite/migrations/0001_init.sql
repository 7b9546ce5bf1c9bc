-- Jobs and the event log. Times are Unix microseconds (UTC).
CREATE TABLE jobs (
  id               TEXT PRIMARY KEY,
  tenant           TEXT NOT NULL,
  owner            TEXT NOT NULL,
  operation        TEXT NOT NULL,
  status           TEXT NOT NULL,
  input            BLOB NOT NULL,
  result           BLOB,
  error            BLOB,
  progress         BLOB,
  attempt          INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  priority         INTEGER NOT NULL DEFAULT 0,
  timeout_seconds  INTEGER NOT NULL,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  metadata         BLOB,
  callback_url     TEXT NOT NULL DEFAULT '',
  created_at       INTEGER NOT NULL,
  run_at           INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  lease_token      TEXT NOT NULL DEFAULT '',
  lease_expires_at INTEGER,
  worker           TEXT NOT NULL DEFAULT '',
  idempotency_key  TEXT,
  request_hash     TEXT NOT NULL DEFAULT '',
  expires_at       INTEGER
) WITHOUT ROWID;

-- Partial indexes: each holds only the rows one background task looks for, so a
-- job pays for an index only while it is in that state.
CREATE INDEX jobs_queued ON jobs (operation, priority DESC, run_at, id) WHERE status = 'queued';
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE status = 'scheduled';
CREATE INDEX jobs_running ON jobs (operation, lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_expires ON jobs (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX jobs_tenant ON jobs (tenant, id);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant, owner, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- AUTOINCREMENT: a sequence number is never reused, even after deletes, so a
-- cursor always means the same place in the log.
CREATE TABLE events (
  seq    INTEGER PRIMARY KEY AUTOINCREMENT,
  stream TEXT NOT NULL,
  tenant TEXT NOT NULL,
  type   TEXT NOT NULL,
  time   INTEGER NOT NULL,
  data   BLOB NOT NULL
);
CREATE INDEX events_stream ON events (stream, seq);
