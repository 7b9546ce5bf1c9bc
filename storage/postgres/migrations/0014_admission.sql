-- Admission (#15). A job of an operation whose max_queued counts per key
-- keeps the key's value (queue_key): the submit counts the queued jobs that
-- share it, from the index below (NULL for every other job, so the index
-- holds only those).
ALTER TABLE jobs ADD COLUMN queue_key TEXT;
CREATE INDEX jobs_queued_key ON jobs (operation, queue_key) WHERE status = 'queued' AND queue_key IS NOT NULL;

-- Unique jobs: which job holds a unique key of an operation. A submit with
-- the key reads (and locks) it; the job answers for the key while it has
-- not finished or finished within the window, after which the next submit
-- takes the record over. The primary key makes two submits of one key, on
-- any nodes, one job: the loser's transaction runs again and finds it.
CREATE TABLE job_unique (
  operation TEXT NOT NULL,
  key       TEXT NOT NULL,
  job_id    TEXT NOT NULL,
  CONSTRAINT job_unique_key PRIMARY KEY (operation, key)
);
-- A deleted job forgets the key it held (DeleteJob).
CREATE INDEX job_unique_job ON job_unique (job_id);

-- Rate-limit buckets (GCRA), one row per limit and key value, shared by
-- every node: tat is the bucket's theoretical arrival time (ns since the
-- epoch). Unlogged: a take writes no WAL and waits for no fsync, and a
-- crash empties the table (every bucket starts full), which a rate limit
-- can afford.
CREATE UNLOGGED TABLE rate_limits (
  key      TEXT PRIMARY KEY,
  tat      BIGINT NOT NULL,
  admitted BOOLEAN NOT NULL
);

-- The drain rate (jobs of an operation that started lately, per second)
-- behind queue_full's Retry-After and a queued job's estimated_start_at:
-- counted from this index over the last minute, on every node alike.
CREATE INDEX jobs_started ON jobs (operation, started_at) WHERE started_at IS NOT NULL;
