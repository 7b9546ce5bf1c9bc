package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/jackc/pgx/v5"
)

// pgURL is the PostgreSQL for multi-node tests, in a schema of its own that is
// dropped afterwards. Under CI=true a server that does not answer fails the test.
func pgURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("ERRAND_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := ctxTimeout(t, 5*time.Second)
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s does not answer: %v", base, err)
		}
		t.Skipf("PostgreSQL at %s does not answer (set ERRAND_TEST_POSTGRES): %v", base, err)
	}
	conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "e2e_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := pgx.Connect(ctx, base); err == nil {
			conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(ctx)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "schema=" + schema
}

// sseRecorder follows a channel over SSE and keeps the event ids it saw.
type sseRecorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *sseRecorder) follow(ctx context.Context, url string) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			r.mu.Lock()
			r.ids = append(r.ids, id)
			r.mu.Unlock()
		}
	}
}

func (r *sseRecorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

// TestThreeNodesKillOne: three errand processes on one PostgreSQL; jobs are
// submitted and events published on all three, workers lease through each, SSE
// watchers follow a channel on the two that will survive. The leader is killed
// with SIGKILL mid-load. Every acknowledged job succeeds (the ones held through
// the dead node after their lease expired, by another worker), no job is left
// running or queued, the watchers saw every acknowledged event once and in
// order, and leadership moved to a survivor.
func TestThreeNodesKillOne(t *testing.T) {
	t.Parallel()
	store := "ERRAND_STORE=" + pgURL(t)
	cfg := testConfig + "channels:\n  \"orders.*\": { history: 1h }\n"
	nodes := []*server{startServerEnv(t, cfg, false, store)}
	waitLog(t, nodes[0], "leading", 10*time.Second) // the first node leads; the others follow
	nodes = append(nodes, startServerEnv(t, cfg, false, store), startServerEnv(t, cfg, false, store))
	leader, survivors := nodes[0], nodes[1:]

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	watchers := []*sseRecorder{{}, {}}
	for i, s := range survivors {
		go watchers[i].follow(ctx, s.URL+"/v1/channels/orders.eu/events?after=0")
	}
	time.Sleep(300 * time.Millisecond) // the watchers are connected

	var dead atomic.Bool
	var mu sync.Mutex
	acked := map[string]bool{} // job ids answered 202
	var published []string     // event cursors answered 202
	held := map[string]bool{}  // jobs the dead node's worker held at the kill
	var wg sync.WaitGroup
	load, endLoad := context.WithCancel(ctx)
	for g := range 6 { // submitters and publishers, round robin over live nodes
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; load.Err() == nil; i++ {
				s := nodes[(g+i)%3]
				if s == leader && dead.Load() {
					continue
				}
				if i%2 == 0 {
					if id, ok := tryPost(s.URL+"/v1/jobs", `{"operation":"echo","input":{"i":1}}`, "id"); ok {
						mu.Lock()
						acked[id] = true
						mu.Unlock()
					}
				} else if id, ok := tryPost(s.URL+"/v1/channels/orders.eu/events", `{"type":"tick"}`, "id"); ok {
					mu.Lock()
					published = append(published, id)
					mu.Unlock()
				}
			}
		}()
	}
	for i, s := range nodes { // one worker per node, 3 s leases
		wg.Add(1)
		go func() {
			defer wg.Done()
			hold := 50 * time.Millisecond
			if i == 0 {
				hold = time.Second // the node to be killed: its worker mostly holds jobs
			}
			work(ctx, s.URL, hold, func(ids []string, holding bool) {
				if i == 0 {
					mu.Lock()
					for _, id := range ids {
						held[id] = holding
					}
					mu.Unlock()
				}
			})
		}()
	}
	time.Sleep(2 * time.Second)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) { // kill while it holds jobs
		mu.Lock()
		holding := slices.Contains(slices.Collect(maps.Values(held)), true)
		mu.Unlock()
		if holding || time.Now().After(deadline) {
			break
		}
	}
	dead.Store(true)
	mu.Lock() // what the dead node's worker holds now stays held: its node is gone
	var stranded []string
	for id, h := range held {
		if h {
			stranded = append(stranded, id)
		}
	}
	mu.Unlock()
	leader.kill() // SIGKILL mid-load
	killedAt := time.Now()
	time.Sleep(2 * time.Second)
	endLoad()
	waitLog(t, survivors[0], "leading", 10*time.Second, survivors[1])

	// Every acknowledged job finishes; those held through the dead node only
	// after their lease ran out, as a new attempt.
	mu.Lock()
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	events := append([]string(nil), published...)
	mu.Unlock()
	if len(ids) < 100 || len(stranded) == 0 {
		t.Fatalf("the load was too light to tell: %d jobs acknowledged, %d held by the dead node's worker", len(ids), len(stranded))
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			j := getJob(t, survivors[len(id)%2], id)
			if j.Status == errand.StatusSucceeded {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s is %s %v after the kill (acknowledged jobs: %d)", id, j.Status, time.Since(killedAt), len(ids))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, id := range stranded {
		if j := getJob(t, survivors[0], id); j.Attempt < 2 {
			t.Errorf("job %s, held through the dead node, succeeded on attempt %d: want a retry after its lease expired", id, j.Attempt)
		}
	}
	stop()
	wg.Wait()
	// Watchers on the survivors saw every acknowledged event, once, in order.
	for i, w := range watchers {
		got := w.seen()
		pos := map[string]int{}
		for k, id := range got {
			if _, dup := pos[id]; dup {
				t.Fatalf("watcher %d saw event %s twice", i, id)
			}
			pos[id] = k
		}
		for _, id := range events {
			if _, ok := pos[id]; !ok {
				other := watchers[1-i].seen()
				t.Fatalf("watcher %d missed acknowledged event %s (saw %d of %d); around it: %v; the other watcher saw it: %v",
					i, id, len(got), len(events), near(got, cursor(id)), slices.Contains(other, id))
			}
		}
		for k := 1; k < len(got); k++ {
			if cursor(got[k]) <= cursor(got[k-1]) {
				t.Fatalf("watcher %d saw %s after %s", i, got[k], got[k-1])
			}
		}
	}
	t.Logf("%d jobs and %d events acknowledged across 3 nodes; %d jobs were held through the killed leader and retried",
		len(ids), len(events), len(stranded))
}

func cursor(id string) int64 {
	n, _ := errand.ParseCursor(id)
	return n
}

// tryPost posts body and returns the answer's field if it was 202.
func tryPost(url, body, field string) (string, bool) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var m map[string]any
	if json.NewDecoder(resp.Body).Decode(&m) != nil || resp.StatusCode != 202 {
		return "", false
	}
	id, _ := m[field].(string)
	return id, id != ""
}

// work leases echo jobs from one node and completes them after a short while,
// telling track which it holds, until ctx ends (a dead node's worker keeps
// failing to reach it, and so keeps holding what it held).
func work(ctx context.Context, base string, hold time.Duration, track func(ids []string, holding bool)) {
	for ctx.Err() == nil {
		resp, err := http.Post(base+"/v1/leases", "application/json",
			strings.NewReader(`{"operations":["echo"],"max_jobs":20,"wait_seconds":1,"lease_seconds":3}`))
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var got struct{ Leases []errand.Lease }
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		var ids []string
		for _, l := range got.Leases {
			ids = append(ids, l.Job.ID)
		}
		track(ids, true)
		time.Sleep(hold)  // the work
		track(ids, false) // from here the completion may commit whatever becomes of the node
		var cs []map[string]any
		for _, l := range got.Leases {
			cs = append(cs, map[string]any{"lease_id": l.ID, "result": map[string]bool{"ok": true}})
		}
		if len(cs) == 0 {
			continue
		}
		b, _ := json.Marshal(map[string]any{"completions": cs})
		resp, err = http.Post(base+"/v1/leases/complete", "application/json", strings.NewReader(string(b)))
		if err != nil {
			continue
		}
		resp.Body.Close()
	}
}

func getJob(t *testing.T, s *server, id string) errand.Job {
	t.Helper()
	_, _, b := s.do("GET", "/v1/jobs/"+id, "")
	var j errand.Job
	mustJSON(t, b, &j)
	return j
}

// waitLog waits until one of the servers' logs contains want.
func waitLog(t *testing.T, s *server, want string, d time.Duration, more ...*server) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, x := range append([]*server{s}, more...) {
			if strings.Contains(x.logs.String(), want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the logs after %v", want, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cutProxy forwards TCP to a target until cut, then refuses and resets every
// connection until restored: a database that goes away and comes back.
type cutProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	p := &cutProxy{target: target}
	p.restore(t)
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) restore(t *testing.T) {
	t.Helper()
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the old listener's port may take a moment to be free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestDatabaseDropsMidLoad: while the database is gone, requests answer 503
// promptly (they neither hang nor report success); when it returns, errand
// serves again without a restart and every job acknowledged before is there.
func TestDatabaseDropsMidLoad(t *testing.T) {
	t.Parallel()
	raw := pgURL(t)
	u, _ := url.Parse(raw)
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.addr
	s := startServerEnv(t, testConfig, false, "ERRAND_STORE="+u.String())
	var acked []string
	for range 50 {
		id, ok := tryPost(s.URL+"/v1/jobs", `{"operation":"echo"}`, "id")
		if !ok {
			t.Fatal("submit failed with the database up")
		}
		acked = append(acked, id)
	}
	proxy.cut()
	for i := range 5 {
		start := time.Now()
		status, code, b := s.call("POST", "/v1/jobs", `{"operation":"echo"}`, "")
		if status != 503 || code != "unavailable" || time.Since(start) > 15*time.Second {
			t.Fatalf("submit %d with the database gone = %d %s after %v, want a prompt 503\n%s", i, status, code, time.Since(start), b)
		}
	}
	if status, _, _ := s.do("GET", "/readyz", ""); status != 503 {
		t.Errorf("/readyz with the database gone = %d, want 503", status)
	}
	if status, code, _ := s.call("GET", "/v1/jobs/"+acked[0], "", ""); status != 503 || code != "unavailable" {
		t.Errorf("GET a job with the database gone = %d %s, want 503", status, code)
	}
	proxy.restore(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if id, ok := tryPost(s.URL+"/v1/jobs", `{"operation":"echo"}`, "id"); ok {
			acked = append(acked, id)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("errand did not recover after the database came back\n%s", s.logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, id := range acked {
		if status, _, b := s.call("GET", "/v1/jobs/"+id, "", ""); status != 200 {
			t.Fatalf("acknowledged job %s after the outage: %d %s", id, status, b)
		}
	}
}

// TestCopySQLiteToPostgres: the upgrade path. A SQLite errand with jobs (one
// with an artifact), channel events, a webhook endpoint and an API key is
// stopped, copied with `errand copy`, and served from PostgreSQL: everything
// is there, and cursors go on from where they were.
func TestCopySQLiteToPostgres(t *testing.T) {
	t.Parallel()
	pg := pgURL(t)
	cfg := testConfig + "channels:\n  \"orders.*\": { history: 1h }\n"
	s := startServer(t, cfg)
	var jobs []string
	for range 20 {
		id, _ := tryPost(s.URL+"/v1/jobs", `{"operation":"echo","input":{"n":1}}`, "id")
		jobs = append(jobs, id)
	}
	_, _, b := s.do("POST", "/v1/leases", `{"operations":["echo"],"max_jobs":1}`)
	var got struct{ Leases []errand.Lease }
	mustJSON(t, b, &got)
	lease := got.Leases[0]
	s.do("PUT", "/v1/leases/"+lease.ID+"/artifacts/report.txt", "the report", "Content-Type", "text/plain")
	s.do("POST", "/v1/leases/"+lease.ID+"/complete", `{"result":{"ok":true}}`)
	var cursors []string
	for range 5 {
		id, _ := tryPost(s.URL+"/v1/channels/orders.eu/events", `{"type":"order.created"}`, "id")
		cursors = append(cursors, id)
	}
	s.do("POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/hook","events":["job.succeeded"]}`)
	s.kill()

	out := cli(t, "", "copy", "--from", "sqlite://"+filepath.Join(s.dir, "errand.db"), "--to", pg)
	if !strings.Contains(out, "jobs                 20 rows") || !strings.Contains(out, "artifacts            1 files") {
		t.Fatalf("errand copy:\n%s", out)
	}
	p := startServerEnv(t, cfg, false, "ERRAND_STORE="+pg)
	for _, id := range jobs {
		if status, _, b := p.call("GET", "/v1/jobs/"+id, "", ""); status != 200 {
			t.Fatalf("job %s after the copy: %d %s", id, status, b)
		}
	}
	if j := getJob(t, p, lease.Job.ID); j.Status != errand.StatusSucceeded || len(j.Artifacts) != 1 {
		t.Fatalf("the completed job after the copy: %+v", j)
	}
	if status, _, b := p.do("GET", "/v1/jobs/"+lease.Job.ID+"/artifacts/report.txt", ""); status != 200 || string(b) != "the report" {
		t.Fatalf("artifact after the copy: %d %q", status, b)
	}
	_, _, b = p.do("GET", "/v1/channels/orders.eu/events", "")
	var hist struct{ Events []struct{ ID string } }
	mustJSON(t, b, &hist)
	if len(hist.Events) != 5 || hist.Events[4].ID != cursors[4] {
		t.Fatalf("channel history after the copy: %s, want cursors %v", b, cursors)
	}
	next, _ := tryPost(p.URL+"/v1/channels/orders.eu/events", `{"type":"order.created"}`, "id")
	if cursor(next) <= cursor(cursors[4]) {
		t.Fatalf("a new event's cursor %s does not follow the copied ones (last %s)", next, cursors[4])
	}
	if _, _, b := p.do("GET", "/v1/webhooks", ""); !strings.Contains(string(b), "127.0.0.1:9/hook") {
		t.Fatalf("webhooks after the copy: %s", b)
	}
}

// near returns the ids within 3 of c.
func near(ids []string, c int64) []string {
	var out []string
	for _, id := range ids {
		if d := cursor(id) - c; d >= -3 && d <= 3 {
			out = append(out, id)
		}
	}
	return out
}

// TestNodesShareChanges: what one node changes, the others act on at once,
// not when their caches expire: a revoked API key (cached 10 s; its event
// stream on the other node ends too) and a new webhook endpoint (snapshot
// reread every 30 s).
func TestNodesShareChanges(t *testing.T) {
	t.Parallel()
	got := make(chan string, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer receiver.Close()
	store := "ERRAND_STORE=" + pgURL(t)
	cfg := testConfig + fmt.Sprintf(`channels:
  "orders.*": { history: 1h }
webhooks: { allow_private: ["127.0.0.0/8"] }
auth:
  api_keys:
    - { name: boot, sha256: %s, roles: [admin], tenant: acme }
`, sha256Hex(bootA))
	a := startServerEnv(t, cfg, true, store)
	b := startServerEnv(t, cfg, true, store)
	_, _, body := a.call("POST", "/v1/keys", `{"name":"temp","roles":["admin"]}`, bootA)
	var k struct{ ID, Token string }
	mustJSON(t, body, &k)
	if status, _, _ := b.call("GET", "/v1/me", "", k.Token); status != 200 {
		t.Fatalf("the new key on the other node: %d", status)
	}
	st := openSSE(t, b, "/v1/channels/orders.eu/events", k.Token)
	if status, _, _ := a.call("DELETE", "/v1/keys/"+k.ID, "", bootA); status != 200 {
		t.Fatal("revoke failed")
	}
	deadline := time.Now().Add(3 * time.Second) // the key cache would keep it for 10 s
	for {
		status, _, _ := b.call("GET", "/v1/me", "", k.Token)
		if status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a key revoked on node A still works on node B after 3 s (%d)", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := st.ended(t, "a stream on node B of a key revoked on node A", 3*time.Second); !strings.Contains(out, "revoked") {
		t.Errorf("the stream on node B ended with %q, want the revocation", out)
	}
	if status, _, body := a.call("POST", "/v1/webhooks", `{"url":"`+receiver.URL+`/hook","events":["channel:orders.*"]}`, bootA); status != 201 {
		t.Fatalf("create endpoint: %d %s", status, body)
	}
	time.Sleep(200 * time.Millisecond)
	if status, _, body := b.call("POST", "/v1/channels/orders.eu/events", `{"type":"order.created","data":{"n":7}}`, bootA); status != 202 {
		t.Fatalf("publish on node B: %d %s", status, body)
	}
	select {
	case d := <-got:
		if !strings.Contains(d, `"n":7`) {
			t.Fatalf("delivery %s", d)
		}
	case <-time.After(5 * time.Second): // the snapshot would take up to 30 s
		t.Fatal("an endpoint made on node A got nothing from an event published on node B within 5 s")
	}
}
