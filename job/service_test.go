package job_test

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/servicetest"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/queue"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/storagetest"
)

// dev and mallory (of another tenant) are the principals the tests act as.
var dev, mallory = servicetest.Dev, servicetest.Mallory

// The jobs service's behaviour, on every driver (teststore.Each).

func TestSubmitAndGet(t *testing.T) { teststore.Each(t, testSubmitAndGet) }

func testSubmitAndGet(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	j := h.Submit("report", job.SubmitParams{Input: servicetest.Input(`{"type":"monthly"}`), Metadata: map[string]string{"k": "v"}})
	got := h.Get(j.ID)
	if got.Status != errand.StatusQueued || string(got.Input) != `{"type":"monthly"}` || got.Metadata["k"] != "v" {
		t.Fatalf("Get = %+v, want queued with the input and metadata", got)
	}
	if got.MaxAttempts != 3 || got.TimeoutSeconds != 600 || got.Tenant != dev.Tenant || got.Owner != dev.Subject {
		t.Fatalf("defaults = attempts %d timeout %d tenant %q owner %q", got.MaxAttempts, got.TimeoutSeconds, got.Tenant, got.Owner)
	}
	if !got.CreatedAt.Equal(h.Clock.Now()) {
		t.Fatalf("created_at = %v, want %v", got.CreatedAt, h.Clock.Now())
	}
	_, err := h.Jobs.Get(h.Ctx, dev, "job_01M81FYDCTE1X91SVCMDMS18K4")
	servicetest.Code(t, err, errand.EJOBNOTFOUND)
}

func TestTenantIsolation(t *testing.T) { teststore.Each(t, testTenantIsolation) }

func testTenantIsolation(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	_, err := h.Jobs.Get(h.Ctx, mallory, j.ID)
	servicetest.Code(t, err, errand.EJOBNOTFOUND)
	_, err = h.Jobs.Cancel(h.Ctx, mallory, j.ID)
	servicetest.Code(t, err, errand.EJOBNOTFOUND)
	_, err = h.Jobs.Events(h.Ctx, mallory, j.ID, "", 10)
	servicetest.Code(t, err, errand.EJOBNOTFOUND)
	list, _, err := h.Jobs.List(h.Ctx, mallory, job.ListParams{})
	if err != nil || len(list) != 0 {
		t.Fatalf("List(other tenant) = %d jobs, %v; want none", len(list), err)
	}
}

func TestIdempotency(t *testing.T) { teststore.Each(t, testIdempotency) }

func testIdempotency(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	sp := job.SubmitParams{Operation: "report", Input: servicetest.Input(`{"a": 1}`), IdempotencyKey: "k1"}
	first, replayed, err := h.Jobs.Submit(h.Ctx, dev, sp)
	if err != nil || replayed {
		t.Fatalf("first Submit: replayed %v, %v", replayed, err)
	}
	sp.Input = servicetest.Input(`{"a":1}`) // same JSON, other white space
	again, replayed, err := h.Jobs.Submit(h.Ctx, dev, sp)
	if err != nil || !replayed || again.ID != first.ID {
		t.Fatalf("repeat Submit = %s replayed %v, %v; want %s replayed", again.ID, replayed, err, first.ID)
	}
	sp.Input = servicetest.Input(`{"a":2}`)
	_, _, err = h.Jobs.Submit(h.Ctx, dev, sp)
	servicetest.Code(t, err, errand.EIDEMPOTENCY)
	other, replayed, err := h.Jobs.Submit(h.Ctx, mallory, sp)
	if err != nil || replayed || other.ID == first.ID {
		t.Fatalf("same key, other tenant = %s replayed %v, %v; want a new job", other.ID, replayed, err)
	}
}

func TestCancelQueued(t *testing.T) { teststore.Each(t, testCancelQueued) }

func testCancelQueued(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	got, err := h.Jobs.Cancel(h.Ctx, dev, j.ID)
	if err != nil || got.Status != errand.StatusCanceled || got.FinishedAt == nil {
		t.Fatalf("Cancel(queued) = %s, %v; want canceled", got.Status, err)
	}
	if ls := h.Lease(1, "report"); len(ls) != 0 {
		t.Fatalf("leased a canceled job")
	}
	if again, err := h.Jobs.Cancel(h.Ctx, dev, j.ID); err != nil || again.Status != errand.StatusCanceled {
		t.Fatalf("Cancel twice = %v, want canceled again without error", err)
	}
}

func TestCancelRunning(t *testing.T) { teststore.Each(t, testCancelRunning) }

func testCancelRunning(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	ls := h.Lease(1, "report")
	got, err := h.Jobs.Cancel(h.Ctx, dev, j.ID)
	if err != nil || got.Status != errand.StatusRunning || !got.CancelRequested {
		t.Fatalf("Cancel(running) = %s cancel_requested %v, %v", got.Status, got.CancelRequested, err)
	}
	hb, err := h.Queue.Heartbeat(h.Ctx, ls[0].ID, queue.HeartbeatParams{})
	if err != nil || !hb.CancelRequested {
		t.Fatalf("Heartbeat after cancel = %+v, %v; want cancel_requested", hb, err)
	}
	done, err := h.Queue.Fail(h.Ctx, ls[0].ID, queue.FailParams{})
	if err != nil || done.Status != errand.StatusCanceled {
		t.Fatalf("Fail after cancel = %s, %v; want canceled", done.Status, err)
	}
	k := h.Submit("report", job.SubmitParams{})
	h.Lease(1, "report")
	h.Queue.Complete(h.Ctx, h.LeaseOf(k.ID), nil)
	_, err = h.Jobs.Cancel(h.Ctx, dev, k.ID)
	servicetest.Code(t, err, errand.ECONFLICT)
}

func TestManualRetry(t *testing.T) { teststore.Each(t, testManualRetry) }

func testManualRetry(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	_, err := h.Jobs.Retry(h.Ctx, dev, j.ID)
	servicetest.Code(t, err, errand.ECONFLICT)
	h.Jobs.Cancel(h.Ctx, dev, j.ID)
	got, err := h.Jobs.Retry(h.Ctx, dev, j.ID)
	if err != nil || got.Status != errand.StatusQueued || got.FinishedAt != nil {
		t.Fatalf("Retry(canceled) = %s, %v; want queued", got.Status, err)
	}
	if ls := h.Lease(1, "report"); len(ls) != 1 || ls[0].Job.ID != j.ID {
		t.Fatalf("the retried job was not leased")
	}
}

func TestDelete(t *testing.T) { teststore.Each(t, testDelete) }

func testDelete(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	servicetest.Code(t, h.Jobs.Delete(h.Ctx, dev, j.ID), errand.ENOTTERMINAL)
	h.Jobs.Cancel(h.Ctx, dev, j.ID)
	if err := h.Jobs.Delete(h.Ctx, dev, j.ID); err != nil {
		t.Fatalf("Delete(canceled): %v", err)
	}
	_, err := h.Jobs.Get(h.Ctx, dev, j.ID)
	servicetest.Code(t, err, errand.EJOBNOTFOUND)
	evs, _ := h.Store.ListEvents(h.Ctx, storage.ListEventsParams{Tenant: dev.Tenant, Stream: j.ID, Limit: 10})
	if len(evs) != 0 {
		t.Fatalf("events after Delete = %d, want 0", len(evs))
	}
}

func TestEventsOrder(t *testing.T) { teststore.Each(t, testEventsOrder) }

func testEventsOrder(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	ls := h.Lease(1, "report")
	h.Queue.Heartbeat(h.Ctx, ls[0].ID, queue.HeartbeatParams{Progress: &errand.Progress{Percent: 40, Message: "charts"}})
	h.Queue.Complete(h.Ctx, ls[0].ID, servicetest.Input(`{"url":"/r.pdf"}`))
	evs, err := h.Jobs.Events(h.Ctx, dev, j.ID, "", 100)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	want := []string{errand.EventJobCreated, errand.EventJobStarted, errand.EventJobProgress, errand.EventJobSucceeded}
	var types []string
	for i, e := range evs {
		types = append(types, e.Type)
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Fatalf("event %d seq %d not after %d", i, e.Seq, evs[i-1].Seq)
		}
	}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("event types = %v, want %v", types, want)
	}
	after, err := h.Jobs.Events(h.Ctx, dev, j.ID, evs[1].Cursor(), 100)
	if err != nil || len(after) != 2 || after[0].Seq != evs[2].Seq {
		t.Fatalf("Events(after %s) = %d events, %v; want the last 2", evs[1].Cursor(), len(after), err)
	}
	_, err = h.Jobs.Events(h.Ctx, dev, j.ID, "garbage", 100)
	servicetest.Code(t, err, errand.ECURSOR)
	heard := h.Commits.Events()
	if len(heard) != 4 || heard[3].Type != errand.EventJobSucceeded {
		t.Fatalf("notifier heard %d events, want the 4 committed ones in order", len(heard))
	}
}

func TestListPages(t *testing.T) { teststore.Each(t, testListPages) }

func testListPages(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("a"), servicetest.Op("b"))
	var ids []string
	for i := range 7 {
		op := "a"
		if i%2 == 1 {
			op = "b"
		}
		ids = append(ids, h.Submit(op, job.SubmitParams{}).ID)
		h.Clock.Advance(time.Millisecond)
	}
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		list, next, err := h.Jobs.List(h.Ctx, dev, job.ListParams{Limit: 3, Cursor: cursor})
		if err != nil || page > 5 {
			t.Fatalf("List page %d: %v", page, err)
		}
		for _, j := range list {
			got = append(got, j.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	for i := range ids {
		if got[i] != ids[len(ids)-1-i] {
			t.Fatalf("listed %v, want newest first %v", got, ids)
		}
	}
	bs, _, _ := h.Jobs.List(h.Ctx, dev, job.ListParams{Operation: "b"})
	if len(bs) != 3 {
		t.Fatalf("List(operation=b) = %d, want 3", len(bs))
	}
	h.Jobs.Cancel(h.Ctx, dev, ids[0])
	cs, _, _ := h.Jobs.List(h.Ctx, dev, job.ListParams{Status: errand.StatusCanceled})
	if len(cs) != 1 || cs[0].ID != ids[0] {
		t.Fatalf("List(status=canceled) = %d jobs, want 1", len(cs))
	}
	_, _, err := h.Jobs.List(h.Ctx, dev, job.ListParams{Cursor: "bm90IGEgY3Vyc29y"})
	servicetest.Code(t, err, errand.ECURSOR)
	_, _, err = h.Jobs.List(h.Ctx, dev, job.ListParams{Status: "done"})
	servicetest.Code(t, err, errand.EINVALID)
}

func TestConcurrentSubmits(t *testing.T) { teststore.Each(t, testConcurrentSubmits) }

func testConcurrentSubmits(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	const n = 400
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 40 {
				j, _, err := h.Jobs.Submit(h.Ctx, dev, job.SubmitParams{Operation: "report"})
				if err != nil {
					t.Errorf("Submit: %v", err)
					return
				}
				ids <- j.ID
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %s given twice", id)
		}
		seen[id] = true
		h.Get(id)
	}
	leased := 0
	for {
		ls := h.Lease(100, "report")
		if len(ls) == 0 {
			break
		}
		leased += len(ls)
	}
	if leased != n {
		t.Fatalf("leased %d jobs, want %d", leased, n)
	}
}

func TestWaitForResult(t *testing.T) { teststore.Each(t, testWaitForResult) }

func testWaitForResult(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	j := h.Submit("report", job.SubmitParams{})
	got := make(chan *errand.Job, 1)
	go func() {
		w, _ := h.Jobs.Wait(h.Ctx, dev, j.ID, 10*time.Second)
		got <- w
	}()
	ls := h.Lease(1, "report")
	h.Queue.Complete(h.Ctx, ls[0].ID, servicetest.Input(`"done"`))
	select {
	case w := <-got:
		if w == nil || w.Status != errand.StatusSucceeded || string(w.Result) != `"done"` {
			t.Fatalf("Wait = %+v, want the succeeded job", w)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Wait did not return within 5s of completion")
	}
	start := time.Now()
	k := h.Submit("report", job.SubmitParams{})
	w, err := h.Jobs.Wait(h.Ctx, dev, k.ID, 100*time.Millisecond)
	if err != nil || w.Status != errand.StatusQueued || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("Wait on an unfinished job = %s after %v, %v; want queued after 100ms", w.Status, time.Since(start), err)
	}
}

func TestLegacyOwners(t *testing.T) { teststore.Each(t, testLegacyOwners) }

// testLegacyOwners: a job stored before migration 0008 under a bare subject
// (legacy:<subject>) is its principal's: read, listed and replayed; a token
// whose subject is an API key's id gets none of the key's jobs.
func testLegacyOwners(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	old, keys := storagetest.Job("job_legacy"), storagetest.Job("job_keys")
	old.Owner, old.IdempotencyKey, old.RequestHash = "legacy:alice", "k1", "h"
	keys.Owner = "key_01"
	err := h.Store.WithTx(h.Ctx, func(tx storage.Tx) error {
		if err := tx.InsertJob(old); err != nil {
			return err
		}
		return tx.InsertJob(keys)
	})
	if err != nil {
		t.Fatal(err)
	}
	alice := errand.Principal{ID: "jwt:https://idp#alice", Subject: "alice", Tenant: "acme",
		Permissions: []string{"jobs:read:own", "jobs:submit"}}
	if _, err := h.Jobs.Get(h.Ctx, alice, old.ID); err != nil {
		t.Errorf("alice reads her job from before the upgrade: %v", err)
	}
	mine, _, err := h.Jobs.List(h.Ctx, alice, job.ListParams{})
	if got := servicetest.JobIDs(mine); err != nil || !slices.Equal(got, []string{old.ID}) {
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
		t.Errorf("a token with the key's id as subject lists %v, want nothing", servicetest.JobIDs(got))
	}
	key := errand.Principal{ID: "key_01", Subject: "key_01", Tenant: "acme", Permissions: []string{"jobs:read:own"}}
	if _, err := h.Jobs.Get(h.Ctx, key, keys.ID); err != nil {
		t.Errorf("the key reads its job: %v", err)
	}
}

func TestSubmitInTx(t *testing.T) { teststore.Each(t, testSubmitInTx) }

// testSubmitInTx: what a submit's InTx writes commits with the job; ErrSkip
// stores nothing, alone or in a batch.
func testSubmitInTx(t *testing.T, s storage.Store) {
	h := servicetest.New(t, s, servicetest.Op("report"))
	reply := func(tx storage.Tx, j *errand.Job) error {
		if was, err := tx.SeenMessage("b", "m1", h.Clock.Now(), h.Clock.Now().Add(time.Hour)); was || err != nil {
			return cmp.Or(err, job.ErrSkip)
		}
		return tx.InsertBridgeReply(&storage.BridgeReply{JobID: j.ID, Bridge: "b", Address: "r", CreatedAt: h.Clock.Now()})
	}
	j := h.Submit("report", job.SubmitParams{InTx: reply})
	if r, err := s.GetBridgeReply(h.Ctx, j.ID); err != nil || r.Address != "r" {
		t.Fatalf("the reply written in the submit's transaction: %+v, %v", r, err)
	}
	if _, _, err := h.Jobs.Submit(h.Ctx, dev, job.SubmitParams{Operation: "report", InTx: reply}); !errors.Is(err, job.ErrSkip) {
		t.Fatalf("a skipped submit answered %v, want ErrSkip", err)
	}
	jobs, errs, err := h.Jobs.SubmitMany(h.Ctx, dev, []job.SubmitParams{{Operation: "report", InTx: reply}, {Operation: "report"}})
	if err != nil || !errors.Is(errs[0], job.ErrSkip) || jobs[0] != nil || errs[1] != nil || jobs[1] == nil {
		t.Fatalf("SubmitMany with a skip = %v, %v, %v", jobs, errs, err)
	}
	if list, _, _ := h.Jobs.List(h.Ctx, dev, job.ListParams{}); len(list) != 2 {
		t.Fatalf("%d jobs stored, want 2 (the skipped ones are not)", len(list))
	}
}
