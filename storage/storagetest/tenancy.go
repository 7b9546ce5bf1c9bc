package storagetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/queue"
	"github.com/errandhq/errand/storage"
)

// tenancyTests are the suite's tests of whose jobs a caller reaches: queued
// jobs by tenant, leases within a scope, owners across migration 0008.
var tenancyTests = map[string]func(*testing.T, func(*testing.T) storage.Store){
	"QueuedJobsByTenant": testQueuedJobsByTenant,
	"LeaseScope":         testLeaseScope,
	"LegacyOwners":       testLegacyOwners,
}

// queuedJob is a queued job of operation in tenant, for the seam's own tests.
func queuedJob(id, tenant, owner, operation string, priority int, now time.Time) *errand.Job {
	return &errand.Job{ID: id, Tenant: tenant, Owner: owner, Operation: operation, Status: errand.StatusQueued,
		Input: Input(`{}`), MaxAttempts: 1, TimeoutSeconds: 60, Priority: priority, CreatedAt: now, RunAt: now}
}

func jobIDs(js []*errand.Job) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

// testQueuedJobsByTenant: QueuedJobs with a tenant returns only its jobs, in
// run order; with "" every tenant's.
func testQueuedJobsByTenant(t *testing.T, open func(*testing.T) storage.Store) {
	s, now := open(t), NewClock().Now()
	tx(t, s, func(tx storage.Tx) error {
		for _, j := range []*errand.Job{
			queuedJob("job_q1", "acme", "key_a", "report", 0, now), queuedJob("job_q2", "globex", "key_b", "report", 9, now),
			queuedJob("job_q3", "acme", "key_a", "report", 5, now), queuedJob("job_q4", "acme", "key_a", "other", 0, now),
		} {
			if err := tx.InsertJob(j); err != nil {
				return err
			}
		}
		return nil
	})
	for _, c := range []struct {
		tenant string
		want   []string
	}{{"acme", []string{"job_q3", "job_q1"}}, {"globex", []string{"job_q2"}}, {"initech", nil},
		{"", []string{"job_q2", "job_q3", "job_q1"}}} {
		tx(t, s, func(tx storage.Tx) error {
			js, err := tx.QueuedJobs(c.tenant, "report", 10)
			if got := jobIDs(js); err != nil || !slices.Equal(got, c.want) {
				t.Errorf("QueuedJobs(%q, report) = %v, %v; want %v", c.tenant, got, err, c.want)
			}
			return nil
		})
	}
}

// testLeaseScope: a tenant's principal leases only its tenant's jobs of the
// operations it may lease and cannot act on another tenant's lease; an
// operator-level grant leases every tenant's; the queue itself (errand's
// runners) every job.
func testLeaseScope(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"), Op("other"))
	acme := errand.Principal{ID: "key_w", Tenant: "acme", Permissions: []string{"workers:lease:report"}}
	globex := errand.Principal{ID: "key_g", Tenant: "globex", Permissions: []string{errand.PermAdmin}}
	fleet := errand.Principal{ID: "key_f", Tenant: "ops", Permissions: []string{"workers:lease:report@*"}}
	submit := func(p errand.Principal, op string) *errand.Job {
		j, _, err := h.Jobs.Submit(h.Ctx, p, job.SubmitParams{Operation: op, Input: Input(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	admin := func(tenant string) errand.Principal {
		return errand.Principal{ID: "key_" + tenant, Tenant: tenant, Permissions: []string{errand.PermAdmin}}
	}
	a1, g1 := submit(admin("acme"), "report"), submit(admin("globex"), "report")
	lease := func(p errand.Principal, ops ...string) ([]errand.Lease, error) {
		return h.Queue.For(queue.ScopeOf(p)).Lease(h.Ctx, queue.LeaseParams{Operations: ops, MaxJobs: 10})
	}
	if _, err := lease(acme, "other"); errand.ErrorCode(err) != errand.EFORBIDDEN {
		t.Errorf("lease an operation the principal may not: %v, want forbidden", err)
	}
	if ls, err := lease(acme, "report"); err != nil || len(ls) != 1 || ls[0].Job.ID != a1.ID {
		t.Fatalf("acme's worker leases %+v, %v; want only acme's job", ls, err)
	}
	ls, err := lease(globex, "report")
	if err != nil || len(ls) != 1 || ls[0].Job.ID != g1.ID {
		t.Fatalf("globex's admin leases %+v, %v; want only globex's job", ls, err)
	}
	theirs := ls[0].ID
	acmeQ := h.Queue.For(queue.ScopeOf(acme))
	_, err = acmeQ.Heartbeat(h.Ctx, theirs, queue.HeartbeatParams{})
	var e *errand.Error
	if !errors.As(err, &e) || e.Code != errand.ELEASEEXPIRED || e.Action != errand.PermWorkersLease {
		t.Errorf("acme heartbeats globex's lease: %v, want lease_expired recorded as a denial", err)
	}
	if _, err := acmeQ.Complete(h.Ctx, theirs, Input(`1`)); errand.ErrorCode(err) != errand.ELEASEEXPIRED {
		t.Errorf("acme completes globex's lease: %v, want lease_expired", err)
	}
	out, _ := acmeQ.CompleteBatch(h.Ctx, []queue.Completion{{LeaseID: theirs}})
	if errand.ErrorCode(out[0].Err) != errand.ELEASEEXPIRED {
		t.Errorf("acme completes globex's lease in a batch: %v, want lease_expired", out[0].Err)
	}
	if got, err := h.Jobs.Get(h.Ctx, admin("globex"), g1.ID); err != nil || got.Status != errand.StatusRunning {
		t.Errorf("globex's job after acme's attempts: %+v, %v; want running", got, err)
	}
	if _, err := h.Queue.For(queue.ScopeOf(globex)).Complete(h.Ctx, theirs, Input(`1`)); err != nil {
		t.Errorf("globex completes its own lease: %v", err)
	}
	a2, g2 := submit(admin("acme"), "report"), submit(admin("globex"), "report")
	ls, err = lease(fleet, "report")
	if got := leaseJobs(ls); err != nil || !slices.Contains(got, a2.ID) || !slices.Contains(got, g2.ID) {
		t.Errorf("the fleet worker leases %v, %v; want acme's and globex's", got, err)
	}
	if _, err := lease(errand.Principal{ID: "x", Tenant: "acme", Permissions: []string{"workers:lease:*"}}, "other"); err != nil {
		t.Errorf("workers:lease:* (own tenant): %v", err)
	}
	submit(admin("globex"), "other")
	if ls := h.Lease(10, "other"); len(ls) != 1 {
		t.Errorf("errand's own runners lease %d of globex's jobs, want 1", len(ls))
	}
}

func leaseJobs(ls []errand.Lease) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Job.ID)
	}
	return out
}

// testLegacyOwners: a job stored before migration 0008 under a bare subject
// (legacy:<subject>) is its principal's: read, listed and replayed; a token
// whose subject is an API key's id gets none of the key's jobs.
func testLegacyOwners(t *testing.T, open func(*testing.T) storage.Store) {
	h := NewHarness(t, open(t), Op("report"))
	now := h.Clock.Now()
	old := queuedJob("job_legacy", "acme", "legacy:alice", "report", 0, now)
	old.IdempotencyKey, old.RequestHash = "k1", "h"
	keys := queuedJob("job_keys", "acme", "key_01", "report", 0, now)
	tx(t, h.Store, func(tx storage.Tx) error {
		if err := tx.InsertJob(old); err != nil {
			return err
		}
		return tx.InsertJob(keys)
	})
	alice := errand.Principal{ID: "jwt:https://idp#alice", Subject: "alice", Tenant: "acme",
		Permissions: []string{"jobs:read:own", "jobs:submit"}}
	if _, err := h.Jobs.Get(h.Ctx, alice, old.ID); err != nil {
		t.Errorf("alice reads her job from before the upgrade: %v", err)
	}
	mine, _, err := h.Jobs.List(h.Ctx, alice, job.ListParams{})
	if got := jobIDs(mine); err != nil || !slices.Equal(got, []string{old.ID}) {
		t.Errorf("alice's jobs = %v, %v; want her job from before the upgrade", got, err)
	}
	// Her idempotency key from before is hers still (another body: refused as reused).
	if _, _, err := h.Jobs.Submit(h.Ctx, alice, job.SubmitParams{Operation: "report", IdempotencyKey: "k1"}); errand.ErrorCode(err) != errand.EIDEMPOTENCY {
		t.Errorf("alice reuses her idempotency key from before the upgrade: %v, want idempotency_key_reused", err)
	}
	impostor := errand.Principal{ID: "jwt:https://idp#key_01", Subject: "key_01", Tenant: "acme", Permissions: []string{"jobs:read:own"}}
	if _, err := h.Jobs.Get(h.Ctx, impostor, keys.ID); errand.ErrorCode(err) != errand.EJOBNOTFOUND {
		t.Errorf("a token with the key's id as subject reads the key's job: %v, want job_not_found", err)
	}
	if got, _, _ := h.Jobs.List(h.Ctx, impostor, job.ListParams{}); len(got) != 0 {
		t.Errorf("a token with the key's id as subject lists %v, want nothing", jobIDs(got))
	}
	key := errand.Principal{ID: "key_01", Subject: "key_01", Tenant: "acme", Permissions: []string{"jobs:read:own"}}
	if _, err := h.Jobs.Get(h.Ctx, key, keys.ID); err != nil {
		t.Errorf("the key reads its job: %v", err)
	}
}

// Upgrade0008 checks migration 0008 on a driver: jobs stored as errand stored
// them before (owners were bare subjects) keep their owners' identities. open
// opens the same database each time; rewind, with the store closed, takes the
// database back to before migration 0008 (its row in errand_migrations and
// what it created gone) so that the next open applies it again.
func Upgrade0008(t *testing.T, open func() storage.Store, rewind func()) {
	t.Helper()
	s, ctx, now := open(), context.Background(), NewClock().Now()
	owners := map[string]string{"job_key": "key_01JD", "job_dev": "dev", "job_jwt": "alice", "job_cfg": "ci",
		"job_oauth_cfg": "config:ci"}
	want := map[string]string{"job_key": "key_01JD", "job_dev": "dev", "job_jwt": "legacy:alice", "job_cfg": "legacy:ci",
		"job_oauth_cfg": "legacy:config:ci"}
	tx(t, s, func(tx storage.Tx) error {
		for id, owner := range owners {
			if err := tx.InsertJob(queuedJob(id, "acme", owner, "report", 0, now)); err != nil {
				return err
			}
		}
		return nil
	})
	s.Close()
	rewind()
	s = open()
	defer s.Close()
	for id, w := range want {
		j, err := s.GetJob(ctx, "acme", id)
		if err != nil || j.Owner != w {
			t.Errorf("after migration 0008, %s (owner %q before): %v, owner %q; want %q", id, owners[id], err, ownerOf(j), w)
			continue
		}
		p := errand.Principal{ID: "jwt:https://idp#" + owners[id], Subject: owners[id], Tenant: "acme"}
		if strings.HasPrefix(owners[id], "key_") || owners[id] == "dev" {
			p.ID = owners[id] // an API key's (or dev's) identity is its id
		}
		if !p.Owns(j) {
			t.Errorf("after migration 0008, %+v does not own its job %s (owner %q)", p, id, j.Owner)
		}
	}
	tx(t, s, func(tx storage.Tx) error {
		js, err := tx.QueuedJobs("acme", "report", 10)
		if err != nil || len(js) != len(want) {
			t.Errorf("QueuedJobs(acme) after migration 0008 = %d jobs, %v; want %d", len(js), err, len(want))
		}
		return nil
	})
}

func ownerOf(j *errand.Job) string {
	if j == nil {
		return ""
	}
	return j.Owner
}
