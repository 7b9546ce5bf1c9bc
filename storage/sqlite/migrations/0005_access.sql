-- API keys: only the SHA-256 of each token is kept.
CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,
  hash         TEXT NOT NULL UNIQUE,
  prefix       TEXT NOT NULL,
  name         TEXT NOT NULL,
  tenant       TEXT NOT NULL,
  roles        BLOB NOT NULL,          -- JSON array
  created_by   TEXT NOT NULL DEFAULT '',
  created_at   INTEGER NOT NULL,       -- µs since epoch
  expires_at   INTEGER,
  revoked_at   INTEGER,
  last_used_at INTEGER
) WITHOUT ROWID;
CREATE INDEX api_keys_tenant ON api_keys (tenant, id);

-- The audit log: append-only, trimmed only by retention.
CREATE TABLE audit_log (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  time       INTEGER NOT NULL,
  tenant     TEXT NOT NULL DEFAULT '',
  subject    TEXT NOT NULL DEFAULT '',
  action     TEXT NOT NULL,
  resource   TEXT NOT NULL DEFAULT '',
  outcome    TEXT NOT NULL,
  status     INTEGER NOT NULL DEFAULT 0,
  detail     TEXT NOT NULL DEFAULT '',
  request_id TEXT NOT NULL DEFAULT '',
  remote     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_tenant ON audit_log (tenant, seq);
CREATE INDEX audit_log_time ON audit_log (time);

-- Single-use tickets for browsers' EventSource and WebSocket (query string).
CREATE TABLE tickets (
  hash       TEXT PRIMARY KEY,
  principal  BLOB NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
