-- What job lists filter by, newest first, as in SQLite: without these,
-- GET /v1/jobs?status=… walks every job of the tenant. Operation and owner never
-- change, so their entries are written once; status moves with the job. The
-- migration runs in a transaction, so the indexes are built without
-- CONCURRENTLY: writes to jobs wait while they build (seconds per million jobs).
CREATE INDEX jobs_tenant_status ON jobs (tenant, status, id);
CREATE INDEX jobs_tenant_operation ON jobs (tenant, operation, id);
CREATE INDEX jobs_tenant_owner ON jobs (tenant, owner, id);
