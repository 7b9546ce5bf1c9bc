-- Artifacts a job produced, as a JSON list on the job row.
ALTER TABLE jobs ADD COLUMN artifacts BYTEA;

-- Small settings errand keeps for itself (generated signing secrets, keys).
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
