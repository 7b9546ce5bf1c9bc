-- IF NOT EXISTS: a test that rewinds the schema to an earlier migration runs this one again.
-- Broker bridges (bridge/): each publish route's cursor into the event log,
-- advanced only after the broker confirmed what it read.
CREATE TABLE IF NOT EXISTS bridge_cursors (
  route      TEXT PRIMARY KEY,
  seq        INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

-- Messages taken from brokers, by the broker's id (or a hash of topic and
-- payload), so that a redelivery does not append or submit twice.
CREATE TABLE IF NOT EXISTS bridge_seen (
  scope      TEXT NOT NULL,
  id         TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (scope, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bridge_seen_expires ON bridge_seen (expires_at);

-- Replies owed to a broker's reply address once a job submitted from a
-- message ends; written with the job.
CREATE TABLE IF NOT EXISTS bridge_replies (
  job_id      TEXT PRIMARY KEY,
  bridge      TEXT NOT NULL,
  address     TEXT NOT NULL,
  correlation BLOB,
  created_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bridge_replies_created ON bridge_replies (created_at);
