package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestE2EGroupFailuresOnPostgres: on one PostgreSQL node, 3,000 channel
// publishes from 8 clients share group commits with calls that fail (retries of
// a queued job, each answered 409). Every publish is answered 202 (none 503),
// the channel holds exactly the 3,000 events, and an SSE subscriber sees each
// once. Before the group commit kept its bookkeeping straight, failed calls
// re-sent other calls' writes: duplicated events, primary-key violations and
// 503s for healthy calls.
func TestE2EGroupFailuresOnPostgres(t *testing.T) {
	t.Parallel()
	s := startServerEnv(t, channelConfig, false, "ERRAND_STORE="+pgURL(t))
	code, _, body := s.do("POST", "/v1/jobs", `{"operation":"echo","input":{}}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: %d %s", code, body)
	}
	var queued struct{ ID string }
	mustJSON(t, body, &queued)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	watching, unwatch := context.WithCancel(context.Background())
	defer unwatch()
	watcher := &sseRecorder{}
	go watcher.follow(watching, s.URL+"/v1/channels/orders.eu/events?after=0")
	time.Sleep(200 * time.Millisecond)

	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts, unexpected := 0, map[int]int{}
	for range 4 { // calls that fail inside the groups the publishes share
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code, _, _ := s.do("POST", "/v1/jobs/"+queued.ID+"/retry", "")
				mu.Lock()
				if code == http.StatusConflict {
					conflicts++
				} else {
					unexpected[code]++
				}
				mu.Unlock()
			}
		}()
	}
	published := publishAll(t, s, "orders.eu", 3000)
	stop()
	wg.Wait()
	if conflicts == 0 || len(unexpected) > 0 {
		t.Errorf("retries of a queued job: %d answered 409, others %v; want only 409s", conflicts, unexpected)
	}
	if len(published) != 3000 {
		t.Fatalf("%d publishes answered 202, want 3000", len(published))
	}

	stored := channelHistory(t, s, "orders.eu")
	if !slices.Equal(stored, published) {
		t.Errorf("the channel holds %d events (%d duplicated cursors), want exactly the 3000 published", len(stored), len(stored)-len(slices.Compact(slices.Clone(stored))))
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(watcher.seen()) < 3000 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show
	var got []int64
	for _, id := range watcher.seen() {
		got = append(got, cursor(id))
	}
	if !slices.Equal(got, published) {
		t.Errorf("the SSE subscriber saw %d events, want the 3000 published, once each, in order", len(got))
		have := map[int64]bool{}
		for _, g := range got {
			have[g] = true
		}
		for i, p := range published {
			if !have[p] {
				t.Logf("missing %d (index %d of %d); first seen %d last %d", p, i, len(published), got[0], got[len(got)-1])
			}
		}
	}
}

// channelHistory reads every event of a channel through the JSON history pages.
func channelHistory(t *testing.T, s *server, channel string) []int64 {
	t.Helper()
	var out []int64
	after := "0"
	for {
		code, _, body := s.do("GET", "/v1/channels/"+channel+"/events?limit=1000&after="+after, "")
		if code != http.StatusOK {
			t.Fatalf("history: %d %s", code, body)
		}
		var page struct {
			Events []struct{ ID string } `json:"events"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("history page %s: %v", body, err)
		}
		for _, e := range page.Events {
			n, _ := strconv.ParseInt(e.ID, 10, 64)
			out = append(out, n)
		}
		if len(page.Events) == 0 {
			return out
		}
		after = page.Events[len(page.Events)-1].ID
	}
}
