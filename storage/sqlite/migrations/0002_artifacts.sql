-- Artifacts a job produced, as a JSON list on the job row: every read of a job and
-- every terminal event carries them with no extra query. The files live in the
-- artifact store.
ALTER TABLE jobs ADD COLUMN artifacts BLOB;

-- Small settings errand keeps for itself (generated signing secrets).
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
