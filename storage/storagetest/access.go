package storagetest

import (
	"cmp"
	"errors"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// accessTests pin API keys, tickets and the audit log.
var accessTests = map[string]func(*testing.T, storage.Store){
	"APIKeys": testAPIKeys,
	"Tickets": testTickets,
	"Audit":   testAudit,
}

func testAPIKeys(t *testing.T, s storage.Store) {
	now := T0
	exp := now.Add(time.Hour)
	a := &errand.APIKey{ID: "key_a", Hash: "hash-a", Prefix: "ek_aaaa", Name: "ci", Tenant: "acme",
		Roles: []string{"admin", "worker"}, CreatedBy: "dev", CreatedAt: now, ExpiresAt: &exp}
	b := &errand.APIKey{ID: "key_b", Hash: "hash-b", Prefix: "ek_bbbb", Name: "other", Tenant: "globex", CreatedAt: now.Add(time.Second)}
	tx(t, s, func(tx storage.Tx) error {
		if err := tx.InsertAPIKey(a); err != nil {
			return err
		}
		return tx.InsertAPIKey(b)
	})
	got, err := s.APIKeyByHash(ctx, "hash-a")
	if err != nil {
		t.Fatalf("APIKeyByHash: %v", err)
	}
	if got.ID != "key_a" || got.Tenant != "acme" || len(got.Roles) != 2 || got.Roles[1] != "worker" ||
		!got.CreatedAt.Equal(now) || got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || got.RevokedAt != nil {
		t.Errorf("APIKeyByHash = %+v, want key_a as stored", got)
	}
	if _, err := s.APIKeyByHash(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("APIKeyByHash(unknown) err = %v, want ErrNotFound", err)
	}
	if ks, _ := s.ListAPIKeys(ctx, "acme"); len(ks) != 1 || ks[0].ID != "key_a" {
		t.Errorf("ListAPIKeys(acme) = %v, want key_a only", ks)
	}
	if ks, _ := s.ListAPIKeys(ctx, ""); len(ks) != 2 || ks[0].ID != "key_a" || ks[1].ID != "key_b" {
		t.Errorf("ListAPIKeys(all) = %d keys, want key_a, key_b", len(ks))
	}
	used := now.Add(time.Minute)
	tx(t, s, func(tx storage.Tx) error {
		if err := tx.TouchAPIKeys(map[string]time.Time{"key_a": used}); err != nil {
			return err
		}
		// An older touch never moves last use back.
		if err := tx.TouchAPIKeys(map[string]time.Time{"key_a": now}); err != nil {
			return err
		}
		k, err := tx.GetAPIKey("key_b")
		if err != nil {
			return err
		}
		k.RevokedAt = &used
		return tx.UpdateAPIKey(k)
	})
	if got, _ := s.APIKeyByHash(ctx, "hash-a"); got.LastUsed == nil || !got.LastUsed.Equal(used) {
		t.Errorf("last used = %v, want %v", got.LastUsed, used)
	}
	if got, _ := s.APIKeyByHash(ctx, "hash-b"); got.RevokedAt == nil || got.Active(used) {
		t.Errorf("revoked key = %+v, want revoked and inactive", got)
	}
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		return tx.InsertAPIKey(&errand.APIKey{ID: "key_c", Hash: "hash-a", CreatedAt: now})
	})
	if err == nil {
		t.Error("a second key with the same hash was stored")
	}
	wantNotFound(t, "UpdateAPIKey of a missing key", s.WithTx(ctx, func(tx storage.Tx) error {
		return tx.UpdateAPIKey(&errand.APIKey{ID: "key_missing", RevokedAt: &used})
	}))
	tx(t, s, func(tx storage.Tx) error {
		_, err := tx.GetAPIKey("key_missing")
		wantNotFound(t, "GetAPIKey of a missing key", err)
		return tx.TouchAPIKeys(map[string]time.Time{"key_missing": used}) // ignored
	})
}

func testTickets(t *testing.T, s storage.Store) {
	now := T0
	tx(t, s, func(tx storage.Tx) error {
		if err := tx.InsertTicket("t1", []byte(`{"subject":"ann"}`), now.Add(time.Minute)); err != nil {
			return err
		}
		return tx.InsertTicket("t2", []byte(`{"subject":"bob"}`), now.Add(-time.Second))
	})
	take := func(hash string) ([]byte, error) {
		var p []byte
		err := s.WithTx(ctx, func(tx storage.Tx) error {
			var err error
			p, err = tx.TakeTicket(hash, now)
			return err
		})
		return p, err
	}
	if p, err := take("t1"); err != nil || string(p) != `{"subject":"ann"}` {
		t.Errorf("TakeTicket(t1) = %s, %v; want ann's principal", p, err)
	}
	if _, err := take("t1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second TakeTicket(t1) err = %v, want ErrNotFound (single use)", err)
	}
	if _, err := take("t2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TakeTicket(expired) err = %v, want ErrNotFound", err)
	}
	tx(t, s, func(tx storage.Tx) error {
		return tx.InsertTicket("t3", []byte(`{}`), now.Add(-time.Minute))
	})
	var n int
	tx(t, s, func(tx storage.Tx) error {
		var err error
		n, err = tx.ExpireTickets(now, 100)
		return err
	})
	if n != 2 { // t2 (its failed take rolled back) and t3
		t.Errorf("ExpireTickets = %d, want 2", n)
	}
}

func testAudit(t *testing.T, s storage.Store) {
	now := T0
	entries := []*errand.AuditEntry{
		{Time: now.Add(-48 * time.Hour), Action: "authenticate", Outcome: errand.AuditFailed, Status: 401, Detail: "old"},
		{Time: now, Tenant: "acme", Subject: "ann", Action: "jobs:submit", Resource: "report", Outcome: errand.AuditDenied, Status: 403},
		{Time: now, Tenant: "acme", Subject: "root", Action: "keys:create", Resource: "key_1", Outcome: errand.AuditOK},
		{Time: now, Tenant: "globex", Subject: "gus", Action: "jobs:read", Resource: "job_x", Outcome: errand.AuditDenied, Status: 404},
		{Time: now, Action: "authenticate", Outcome: errand.AuditFailed, Status: 401, RequestID: "r1", Remote: "127.0.0.1"},
	}
	tx(t, s, func(tx storage.Tx) error { return tx.InsertAudit(entries) })
	for i := 1; i < len(entries); i++ {
		if entries[i].Seq <= entries[i-1].Seq {
			t.Fatalf("seqs %d, %d not increasing", entries[i-1].Seq, entries[i].Seq)
		}
	}
	list := func(p storage.ListAuditParams) []string {
		t.Helper()
		p.Limit = cmp.Or(p.Limit, 100)
		es, err := s.ListAudit(ctx, p)
		if err != nil {
			t.Fatalf("ListAudit(%+v): %v", p, err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Action+"/"+e.Tenant)
		}
		return out
	}
	check := func(name string, got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s = %v, want %v", name, got, want)
				return
			}
		}
	}
	check("acme", list(storage.ListAuditParams{Tenant: "acme"}), "keys:create/acme", "jobs:submit/acme")
	check("acme+anonymous", list(storage.ListAuditParams{Tenant: "acme", Anonymous: true}),
		"authenticate/", "keys:create/acme", "jobs:submit/acme", "authenticate/")
	check("all denied", list(storage.ListAuditParams{AllTenants: true, Outcome: errand.AuditDenied}), "jobs:read/globex", "jobs:submit/acme")
	check("jobs:*", list(storage.ListAuditParams{AllTenants: true, Action: "jobs:*"}), "jobs:read/globex", "jobs:submit/acme")
	check("after", list(storage.ListAuditParams{AllTenants: true, Follow: true, After: entries[2].Seq}), "jobs:read/globex", "authenticate/")
	check("before", list(storage.ListAuditParams{AllTenants: true, Before: entries[2].Seq, Limit: 1}), "jobs:submit/acme")
	check("follow from 0", list(storage.ListAuditParams{AllTenants: true, Follow: true, Limit: 1}), "authenticate/")
	check("subject", list(storage.ListAuditParams{AllTenants: true, Subject: "root"}), "keys:create/acme")
	var n int
	tx(t, s, func(tx storage.Tx) error {
		var err error
		n, err = tx.ExpireAudit(now.Add(-24*time.Hour), 100)
		return err
	})
	if n != 1 {
		t.Errorf("ExpireAudit = %d, want 1 (the 48 h old entry)", n)
	}
}
