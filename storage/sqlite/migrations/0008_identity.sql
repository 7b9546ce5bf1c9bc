-- Owners become qualified identities (errand.Principal.ID): key_… for an API key
-- and its OAuth tokens, config:<name>, jwt:<issuer>#<sub>, dev. Before, a job's
-- owner was the bare subject, so a token whose sub was an API key's id owned
-- that key's jobs. An owner stored before is an API key's id (kept: it already
-- is the key's identity), dev (kept), or another subject, marked legacy:<subject>
-- so that no new identity can ever equal it (errand.Principal.LegacyOwner).
UPDATE jobs SET owner = 'legacy:' || owner WHERE substr(owner, 1, 4) <> 'key_' AND owner <> 'dev';

-- A tenant's workers lease only that tenant's jobs: its queued jobs of an
-- operation in the order they run, without reading other tenants'.
CREATE INDEX jobs_queued_tenant ON jobs (tenant, operation, priority DESC, run_at, id) WHERE status = 'queued';
