-- Artifacts live in the database, so every node can serve every job's files.
CREATE TABLE artifacts (
  job_id   TEXT NOT NULL,
  name     TEXT NOT NULL,
  data     BYTEA NOT NULL,
  mod_time BIGINT NOT NULL,
  PRIMARY KEY (job_id, name)
);
