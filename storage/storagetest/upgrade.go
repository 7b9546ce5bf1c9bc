package storagetest

import (
	"strings"
	"testing"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// Upgrade0008 checks migration 0008 on a driver: jobs stored as errand stored
// them before (owners were bare subjects) keep their owners' identities. open
// opens the same database each time; rewind, with the store closed, takes the
// database back to before migration 0008 (its row in errand_migrations and
// what it created gone) so that the next open applies it again.
func Upgrade0008(t *testing.T, open func() storage.Store, rewind func()) {
	t.Helper()
	s := open()
	owners := map[string]string{"job_key": "key_01JD", "job_dev": "dev", "job_jwt": "alice", "job_cfg": "ci",
		"job_oauth_cfg": "config:ci"}
	want := map[string]string{"job_key": "key_01JD", "job_dev": "dev", "job_jwt": "legacy:alice", "job_cfg": "legacy:ci",
		"job_oauth_cfg": "legacy:config:ci"}
	tx(t, s, func(tx storage.Tx) error {
		for id, owner := range owners {
			if err := tx.InsertJob(ownedJob(id, owner)); err != nil {
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
		js, err := tx.QueuedJobs("acme", "report", 10, 0)
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

func ownedJob(id, owner string) *errand.Job {
	j := Job(id)
	j.Owner = owner
	return j
}
