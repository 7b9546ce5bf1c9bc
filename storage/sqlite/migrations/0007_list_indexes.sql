-- What job lists filter by, newest first: without these, GET /v1/jobs?status=…
-- walks every job of the tenant (1.5 s over a million). Operation and owner never
-- change, so their entries are written once; status moves with the job.
CREATE INDEX jobs_tenant_status ON jobs (tenant, status, id);
CREATE INDEX jobs_tenant_operation ON jobs (tenant, operation, id);
CREATE INDEX jobs_tenant_owner ON jobs (tenant, owner, id);
