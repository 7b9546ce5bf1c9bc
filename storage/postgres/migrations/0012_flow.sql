-- Flow control on the lease path (#15): a job keeps the values of its
-- operation's concurrency_key and fairness key, taken at submit ('' when the
-- operation has none, else never ''; they never change).
ALTER TABLE jobs ADD COLUMN concurrency_key TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN fair_key TEXT NOT NULL DEFAULT '';
-- Fair leases read each key's head: the best queued job of one key. Only
-- jobs of operations with the key are in these indexes: other operations'
-- writes never touch them.
CREATE INDEX jobs_queued_fair ON jobs (operation, fair_key, priority DESC, run_at, id)
  WHERE status = 'queued' AND fair_key <> '';
-- Per-key concurrency counts an operation's running jobs by key.
CREATE INDEX jobs_running_key ON jobs (operation, concurrency_key) WHERE status = 'running' AND concurrency_key <> '';

-- An operation's execution state, shared by every node: paused (1) or not
-- (0), and start_rate's theoretical arrival time (GCRA; µs since epoch, 0 when
-- none yet).
CREATE TABLE operation_flow (
  operation  TEXT PRIMARY KEY,
  paused     INTEGER NOT NULL DEFAULT 0,
  start_tat  BIGINT NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL DEFAULT 0
);
