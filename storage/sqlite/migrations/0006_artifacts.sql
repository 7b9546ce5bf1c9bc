-- Numbered as the PostgreSQL driver's 0006_artifacts (which keeps artifacts in
-- the database, for several nodes): the SQLite driver keeps them as files beside
-- the database (artifact.FS), so there is nothing to change here.
SELECT 1;
