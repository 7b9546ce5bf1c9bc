package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand"
)

// TestE2EPointReadsBesideSlowLists: 16 clients listing 200,000 jobs by filters
// (one the indexes answer, one they cannot: no job matches both) do not make
// GET /v1/jobs/{id} wait: on SQLite point reads have connections of their own,
// on PostgreSQL the pool is large; on both lists have indexes and a time
// budget. Lists answer 200, or 503 with Retry-After past their budget.
func TestE2EPointReadsBesideSlowLists(t *testing.T) {
	// Not parallel: it loads the machine (hundreds of thousands of rows written
	// and scanned) and measures; run alone, it neither slows other tests nor is
	// slowed by them.
	t.Run("sqlite", func(t *testing.T) { pointReadsBesideLists(t, nil) })
	t.Run("postgres", func(t *testing.T) { pointReadsBesideLists(t, []string{"ERRAND_STORE=" + pgURL(t)}) })
}

// fillScanJobs submits 200,000 jobs of 300-byte inputs (60 MB to scan) in
// batches of 1,000: operation a queued, operation b scheduled a day ahead. It
// returns the ids of a sample of them.
func fillScanJobs(t *testing.T, s *server) []string {
	t.Helper()
	var mu sync.Mutex
	var sample []string
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := c; b < 200; b += 4 {
				pad := `"input":{"pad":"` + strings.Repeat("x", 286) + `"}`
				var body strings.Builder
				body.WriteString(`{"jobs":[`)
				for i := range 1000 {
					if i > 0 {
						body.WriteByte(',')
					}
					if i%2 == 0 {
						body.WriteString(`{"operation":"a",` + pad + `}`)
					} else {
						body.WriteString(`{"operation":"b","delay_seconds":86400,` + pad + `}`)
					}
				}
				body.WriteString(`]}`)
				resp, err := http.Post(s.URL+"/v1/job-batches", "application/json", strings.NewReader(body.String()))
				if err != nil {
					t.Errorf("submit batch: %v", err)
					return
				}
				var out struct {
					Jobs []struct {
						Job struct{ ID string } `json:"job"`
					} `json:"jobs"`
				}
				if b%20 == 0 { // a sample, spread over the table
					json.NewDecoder(resp.Body).Decode(&out)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("submit batch: %d", resp.StatusCode)
					return
				}
				mu.Lock()
				for _, j := range out.Jobs {
					sample = append(sample, j.Job.ID)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() || len(sample) == 0 {
		t.FailNow()
	}
	return sample
}

func pointReadsBesideLists(t *testing.T, env []string) {
	s := startServerEnv(t, "listen: \"127.0.0.1:0\"\noperations: {a: {}, b: {}}\n", false, env...)
	store := "sqlite"
	if len(env) > 0 {
		store = "postgres"
	}
	ids := fillScanJobs(t, s)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lists, unavailable atomic.Int64
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			query := []string{"status=scheduled", "operation=a&status=scheduled"}[c%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(s.URL + "/v1/jobs?limit=100&" + query)
				if err != nil {
					t.Errorf("list %s: %v", query, err)
					return
				}
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
					unavailable.Add(1)
				case resp.StatusCode != http.StatusOK:
					t.Errorf("list %s: %d", query, resp.StatusCode)
					return
				}
				lists.Add(1)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the lists fill every connection they can
	var lat []time.Duration
	for i, end := 0, time.Now().Add(3*time.Second); time.Now().Before(end) || i < 20; i++ {
		id := ids[(i*7919)%len(ids)]
		start := time.Now()
		status, _, body := s.do("GET", "/v1/jobs/"+id, "")
		lat = append(lat, time.Since(start))
		var j errand.Job
		if status != http.StatusOK || json.Unmarshal(body, &j) != nil || j.ID != id {
			t.Fatalf("GET /v1/jobs/%s: %d %s", id, status, truncate(body))
		}
	}
	close(stop)
	wg.Wait()
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("%s: point reads beside 16 list loops: p50 %v, p99 %v, max %v; %d lists answered (%d of them 503)",
		store, p50, p99, lat[len(lat)-1], lists.Load(), unavailable.Load())
	if p99 > time.Second {
		t.Fatalf("point reads p99 %v beside slow lists, want under 1s", p99)
	}
	if lists.Load() == 0 {
		t.Fatal("no list answered")
	}
}
