-- The dashboard's overview counts one tenant's queued and running jobs per
-- operation, with the oldest run_at (TenantQueueStats): this index answers it
-- alone (a covering scan, grouped in index order), where jobs_queued_tenant
-- made SQLite read every queued row.
CREATE INDEX IF NOT EXISTS jobs_queue_stats ON jobs (tenant, status, operation, run_at) WHERE status IN ('queued', 'running');
