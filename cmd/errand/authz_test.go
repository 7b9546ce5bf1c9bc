package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/errandhq/errand"
	"github.com/golang-jwt/jwt/v5"
)

// The authorization suite: privilege escalation, tenancy of leases and of
// identities, streams that end with their credential, a flood of failed
// authentications, lease tokens kept out of logs, the operator's signing key.

// authzConfig serves two tenants' admins, an operator, a JWT issuer (tenant
// claim org) and roles for the tests below; extra is added to the auth section.
func authzConfig(extra string) string {
	return testConfig + `  runs-here:
    handler: { type: exec, command: ["cat"] }
channels:
  "orders.*": { history: 1h }
audit: { failure_window: 2s }
` + fmt.Sprintf(`auth:
  leeway: 1s
  roles:
    reporter: ["jobs:submit:generate-*", "jobs:read:own", "channels:subscribe:orders.*"]
    worker: ["workers:lease:*"]
    keymaster: ["keys:manage"]
    lead: ["keys:manage", "jobs:submit:generate-*", "jobs:read:any", "channels:subscribe:orders.*"]
    monthly: ["jobs:submit:generate-monthly*", "jobs:read:own"]
    submitter: ["jobs:submit"]
    fleet: ["workers:lease:*@*"]
    operator: ["audit:read@*", "oauth:rotate-key@*"]
  api_keys:
    - { name: boot-a, sha256: %s, roles: [admin], tenant: acme }
    - { name: boot-b, sha256: %s, roles: [admin], tenant: globex }
    - { name: boot-ops, sha256: %s, roles: [operator], tenant: ops }
  jwt:
    - { issuer: %q, audience: errand, secret: %q, claims: { tenant: org } }
`, sha256Hex(bootA), sha256Hex(bootB), sha256Hex(bootOps), hsIssuer, hsSecret) + extra
}

// newKey makes a key with roles as token (an admin) and returns its id and token.
func newKey(t *testing.T, s *server, token, name string, roles ...string) (id, secret string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"name": name, "roles": roles})
	status, _, body := s.call("POST", "/v1/keys", string(b), token)
	if status != 201 {
		t.Fatalf("create key %s %v: %d %s", name, roles, status, body)
	}
	var k struct{ ID, Token string }
	mustJSON(t, body, &k)
	return k.ID, k.Token
}

// auditEntries reads the audit log as token (newest first).
func auditEntries(t *testing.T, s *server, token, query string) []errand.AuditEntry {
	t.Helper()
	status, _, b := s.call("GET", "/v1/audit?limit=1000&"+query, "", token)
	if status != 200 {
		t.Fatalf("GET /v1/audit?%s = %d %s", query, status, b)
	}
	var page struct{ Entries []errand.AuditEntry }
	mustJSON(t, b, &page)
	return page.Entries
}

// TestSecurityEscalation: a key may grant only what it holds (Kubernetes'
// escalation rule), on POST /v1/keys and in an OAuth scope.
func TestSecurityEscalation(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, authzConfig(""), true)
	_, km := newKey(t, s, bootA, "keymaster", "keymaster")
	leadID, lead := newKey(t, s, bootA, "lead", "lead")
	cases := []struct {
		name, token string
		roles       []string
		status      int
	}{
		{"keys:manage alone mints admin", km, []string{"admin"}, 403},
		{"keys:manage alone mints a reporter", km, []string{"reporter"}, 403},
		{"keys:manage mints keys:manage", km, []string{"keymaster"}, 201},
		{"lead mints a reporter (held: a subset)", lead, []string{"reporter"}, 201},
		{"lead mints generate-monthly* (inside its glob)", lead, []string{"monthly"}, 201},
		{"lead mints every submit (beyond its glob)", lead, []string{"submitter"}, 403},
		{"lead mints a worker", lead, []string{"reporter", "worker"}, 403},
		{"lead mints admin", lead, []string{"admin"}, 403},
		{"lead mints an operator-level role", lead, []string{"fleet"}, 403},
		{"a tenant's admin mints an operator-level role", bootA, []string{"fleet"}, 403},
		{"a tenant's admin mints admin", bootA, []string{"admin"}, 201},
	}
	for _, c := range cases {
		b, _ := json.Marshal(map[string]any{"name": "k", "roles": c.roles})
		status, code, body := s.call("POST", "/v1/keys", string(b), c.token)
		if status != c.status || (status == 403 && code != "forbidden") {
			t.Errorf("%s: POST /v1/keys %v = %d %s, want %d", c.name, c.roles, status, body, c.status)
		}
	}
	// An OAuth scope narrows to roles the key's permissions cover, declared or not among its roles.
	scope := func(roles string) (int, string) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {leadID}, "client_secret": {lead}, "scope": {roles}}
		status, _, b := s.do("POST", "/v1/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
		var tok struct{ Error, Scope string }
		json.Unmarshal(b, &tok)
		return status, tok.Error + tok.Scope
	}
	for _, c := range []struct {
		scope, want string
		status      int
	}{{"admin", "invalid_scope", 400}, {"reporter worker", "invalid_scope", 400}, {"fleet", "invalid_scope", 400},
		{"reporter", "reporter", 200}, {"lead", "lead", 200}} {
		if status, got := scope(c.scope); status != c.status || got != c.want {
			t.Errorf("token with scope %q = %d %s, want %d %s", c.scope, status, got, c.status, c.want)
		}
	}
	// Each refusal is a denial on record (written within moments).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		denials := 0
		for _, e := range auditEntries(t, s, bootA, "outcome=denied&action=keys:manage") {
			if strings.HasPrefix(e.Resource, "role ") && e.Status == 403 {
				denials++
			}
		}
		if denials == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d escalation denials in the audit log, want 7", denials)
		}
	}
}

// lease leases up to n jobs of ops as token and returns the leases.
func leaseAs(t *testing.T, s *server, token string, n int, ops ...string) (int, []errand.Lease) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"operations": ops, "max_jobs": n, "lease_seconds": 60})
	status, _, body := s.call("POST", "/v1/leases", string(b), token)
	var out struct{ Leases []errand.Lease }
	if status == 200 {
		mustJSON(t, body, &out)
	}
	return status, out.Leases
}

func submitAs(t *testing.T, s *server, token, op string) errand.Job {
	t.Helper()
	status, _, b := s.call("POST", "/v1/jobs", `{"operation":"`+op+`","input":{"n":1}}`, token, "Prefer", "respond-async")
	if status != 202 {
		t.Fatalf("submit %s: %d %s", op, status, b)
	}
	var j errand.Job
	mustJSON(t, b, &j)
	return j
}

// TestSecurityCrossTenantLeases: a tenant's admin and workers lease only that
// tenant's jobs and cannot act on another tenant's lease; an operator-level
// workers:lease:*@* leases every tenant's; errand's own exec runner runs every
// tenant's jobs.
func TestSecurityCrossTenantLeases(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, authzConfig(""), true)
	_, workerA := newKey(t, s, bootA, "worker-a", "worker")
	globex := submitAs(t, s, bootB, "echo")
	acme := submitAs(t, s, bootA, "echo")
	for name, tok := range map[string]string{"acme's admin": bootA, "acme's worker": workerA} {
		if status, ls := leaseAs(t, s, tok, 10, "echo"); status != 200 || len(ls) > 1 || (len(ls) == 1 && ls[0].Job.ID != acme.ID) {
			t.Fatalf("%s leases echo: %d %+v, want at most acme's job", name, status, ls)
		}
	}
	_, ls := leaseAs(t, s, bootB, 10, "echo")
	if len(ls) != 1 || ls[0].Job.ID != globex.ID {
		t.Fatalf("globex's admin leases %+v, want its job", ls)
	}
	leaseB := ls[0].ID
	// acme's admin knows globex's lease id: every lease route answers as if it were not held.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/leases/" + leaseB + "/heartbeat", `{}`},
		{"POST", "/v1/leases/" + leaseB + "/complete", `{"result":"stolen"}`},
		{"POST", "/v1/leases/" + leaseB + "/fail", `{"error":{"code":"x"}}`},
		{"POST", "/v1/leases/" + leaseB + "/release", ``},
		{"PUT", "/v1/leases/" + leaseB + "/artifacts/x.txt", `stolen`},
	} {
		if status, code, b := s.call(c.method, c.path, c.body, bootA); status != 409 || code != "lease_expired" {
			t.Errorf("acme's admin: %s %s = %d %s, want 409 lease_expired", c.method, c.path, status, b)
		}
	}
	status, _, b := s.call("POST", "/v1/leases/complete", `{"completions":[{"lease_id":"`+leaseB+`","result":1}]}`, bootA)
	if status != 200 || !strings.Contains(string(b), "lease_expired") {
		t.Errorf("acme's admin completes globex's lease in a batch: %d %s, want its entry lease_expired", status, b)
	}
	if _, _, b := s.call("GET", "/v1/jobs/"+globex.ID, "", bootB); !strings.Contains(string(b), `"status":"running"`) {
		t.Errorf("globex's job after acme's attempts: %s, want it running, untouched", b)
	}
	if status, _, b := s.call("POST", "/v1/leases/"+leaseB+"/heartbeat", `{}`, bootB); status != 200 {
		t.Errorf("globex's own heartbeat: %d %s", status, b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for denied := 0; denied < 6; {
		denied = 0
		for _, e := range auditEntries(t, s, bootA, "outcome=denied&action=workers:lease") {
			if e.Resource == errand.RedactLeases(leaseB) && e.Status == 409 && e.Tenant == "acme" {
				denied++
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d denials of globex's lease in acme's audit log, want 6", denied)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// An operator-level grant leases every tenant's jobs.
	_, fleet := newKeyOps(t, s)
	a2, b2 := submitAs(t, s, bootA, "echo"), submitAs(t, s, bootB, "echo")
	_, ls = leaseAs(t, s, fleet, 10, "echo")
	got := map[string]bool{}
	for _, l := range ls {
		got[l.Job.ID] = true
	}
	if !got[a2.ID] || !got[b2.ID] {
		t.Fatalf("the fleet worker leased %v, want %s (acme) and %s (globex)", got, a2.ID, b2.ID)
	}
	for _, l := range ls {
		if status, _, b := s.call("POST", "/v1/leases/"+l.ID+"/complete", `{"result":"ok"}`, fleet); status != 200 {
			t.Errorf("the fleet worker completes %s: %d %s", l.Job.ID, status, b)
		}
	}

	// errand's own runner takes every tenant's jobs, in process.
	for _, tok := range []string{bootA, bootB} {
		j := submitAs(t, s, tok, "runs-here")
		status, _, b := s.call("GET", "/v1/jobs/"+j.ID, "", tok, "Prefer", "wait=30")
		if status != 200 || !strings.Contains(string(b), `"status":"succeeded"`) {
			t.Errorf("exec job of %s: %d %s, want succeeded", j.Tenant, status, b)
		}
	}
}

// newKeyOps makes a fleet worker key on the command line (the operator: no API
// caller may grant an operator-level role) and returns its id and token.
func newKeyOps(t *testing.T, s *server) (string, string) {
	t.Helper()
	out := cli(t, "", "keys", "create", "--config", s.dir+"/errand.yaml", "--name", "fleet", "--role", "fleet", "--tenant", "ops")
	token, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(token, "ek_") {
		t.Fatalf("keys create: %s", out)
	}
	return strings.Fields(out[strings.Index(out, "id:"):])[1], token
}

// TestSecurityIdentity: a JWT whose sub is an API key's id is not that key: it
// neither reads the key's jobs nor replays its idempotency keys; the key's own
// OAuth tokens are the key.
func TestSecurityIdentity(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, authzConfig(""), true)
	keyID, key := newKey(t, s, bootA, "reports", "reporter")
	body := `{"operation":"generate-report","input":{"type":"monthly"}}`
	status, _, b := s.call("POST", "/v1/jobs", body, key, "Idempotency-Key", "once")
	var j errand.Job
	mustJSON(t, b, &j)
	if status != 202 {
		t.Fatalf("submit: %d %s", status, b)
	}
	jwtTok := sign(t, jwt.SigningMethodHS256, []byte(hsSecret), claims(hsIssuer, "errand", time.Hour, "sub", keyID, "org", "acme", "roles", "reporter"), "")
	if status, code, b := s.call("GET", "/v1/jobs/"+j.ID, "", jwtTok); status != 404 || code != "job_not_found" {
		t.Errorf("JWT with the key's id as sub reads the key's job: %d %s, want 404", status, b)
	}
	if _, _, b := s.call("GET", "/v1/jobs", "", jwtTok); strings.Contains(string(b), j.ID) {
		t.Errorf("JWT with the key's id as sub lists the key's job: %s", b)
	}
	status, h, b := s.do("POST", "/v1/jobs", body, "Authorization", "Bearer "+jwtTok, "Idempotency-Key", "once")
	var replay errand.Job
	mustJSON(t, b, &replay)
	if status != 202 || replay.ID == j.ID || h.Get("Idempotent-Replayed") != "" {
		t.Errorf("JWT replays the key's idempotency key: %d %s (replayed %q), want a job of its own", status, b, h.Get("Idempotent-Replayed"))
	}
	var me errand.Principal
	mustJSON(t, must200(t, s, "GET", "/v1/me", jwtTok), &me)
	if me.ID != "jwt:"+hsIssuer+"#"+keyID || me.Subject != keyID {
		t.Errorf("/v1/me of the JWT = %+v, want id jwt:%s#%s", me, hsIssuer, keyID)
	}
	// The key, and its OAuth token, are the owner.
	tok, err := clientCredentials(context.Background(), s.URL, keyID, key)
	if err != nil {
		t.Fatal(err)
	}
	for name, cred := range map[string]string{"the key": key, "its OAuth token": tok} {
		if status, _, b := s.call("GET", "/v1/jobs/"+j.ID, "", cred); status != 200 {
			t.Errorf("%s reads its job: %d %s", name, status, b)
		}
		status, h, _ := s.do("POST", "/v1/jobs", body, "Authorization", "Bearer "+cred, "Idempotency-Key", "once")
		if status != 202 || h.Get("Idempotent-Replayed") != "true" {
			t.Errorf("%s replays its idempotency key: %d (replayed %q), want the same job", name, status, h.Get("Idempotent-Replayed"))
		}
	}
}

func must200(t *testing.T, s *server, method, path, token string) []byte {
	t.Helper()
	status, _, b := s.call(method, path, "", token)
	if status != 200 {
		t.Fatalf("%s %s = %d %s", method, path, status, b)
	}
	return b
}

// sseStream is an open event stream read line by line on a goroutine.
type sseStream struct {
	lines chan string
	done  chan struct{}
}

func openSSE(t *testing.T, s *server, path, token string) *sseStream {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
	}
	st := &sseStream{lines: make(chan string, 1000), done: make(chan struct{})}
	go func() {
		defer close(st.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			st.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return st
}

// ended waits until the stream closes and returns what it sent; it fails the
// test if that takes longer than d.
func (st *sseStream) ended(t *testing.T, name string, d time.Duration) string {
	t.Helper()
	select {
	case <-st.done:
	case <-time.After(d):
		t.Fatalf("%s: the event stream is still open after %v", name, d)
	}
	var all []string
	for {
		select {
		case l := <-st.lines:
			all = append(all, l)
		default:
			return strings.Join(all, "\n")
		}
	}
}

// wsEnd reads c until it closes and returns the last message and the close error.
func wsEnd(t *testing.T, c *websocket.Conn, d time.Duration) (wsMsg, error) {
	t.Helper()
	ctx := ctxTimeout(t, d)
	var last wsMsg
	for {
		var m wsMsg
		if err := wsjson.Read(ctx, c, &m); err != nil {
			return last, err
		}
		last = m
	}
}

func wsSubscribe(t *testing.T, c *websocket.Conn, channel string) {
	t.Helper()
	ctx := ctxTimeout(t, 5*time.Second)
	wsjson.Write(ctx, c, map[string]any{"op": "subscribe", "id": "s", "channel": channel})
	var ack wsMsg
	if err := wsjson.Read(ctx, c, &ack); err != nil || ack.Op != "ack" {
		t.Fatalf("subscribe %s: %+v %v", channel, ack, err)
	}
}

// checkEnded asserts an SSE stream ended with the unauthorized error frame and
// a WebSocket with close code 4401, both saying why.
func checkEnded(t *testing.T, name string, st *sseStream, c *websocket.Conn, why string, within time.Duration) {
	t.Helper()
	start := time.Now()
	out := st.ended(t, name+" (SSE)", within)
	if !strings.Contains(out, "event: error") || !strings.Contains(out, `"code":"unauthorized"`) || !strings.Contains(out, why) {
		t.Errorf("%s: the SSE stream ended with\n%s\nwant an error event with the unauthorized problem saying %q", name, out, why)
	}
	last, err := wsEnd(t, c, within-time.Since(start)+time.Second)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4401 || !strings.Contains(ce.Reason, why) {
		t.Errorf("%s: the WebSocket ended with %v, want close 4401 saying %q", name, err, why)
	}
	if last.Op != "error" || last.Error["code"] != "unauthorized" {
		t.Errorf("%s: the WebSocket's last message %+v, want an unauthorized error", name, last)
	}
}

// TestSecurityStreamsEnd: SSE streams and WebSockets end within seconds when
// their key is revoked (also one opened with a ticket) or their token expires.
func TestSecurityStreamsEnd(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, authzConfig(""), true)
	keyID, key := newKey(t, s, bootA, "watcher", "reporter")
	st := openSSE(t, s, "/v1/channels/orders.eu/events", key)
	ws := dialAuth(t, s, key)
	wsSubscribe(t, ws, "orders.eu")
	var tk struct{ Ticket string }
	status, _, b := s.call("POST", "/v1/tickets", "", key)
	mustJSON(t, b, &tk)
	if status != 201 {
		t.Fatalf("ticket: %d %s", status, b)
	}
	byTicket := openSSE(t, s, "/v1/channels/orders.eu/events?ticket="+tk.Ticket, "")
	time.Sleep(200 * time.Millisecond) // the streams are open: revoke
	if status, _, b := s.call("DELETE", "/v1/keys/"+keyID, "", bootA); status != 200 {
		t.Fatalf("revoke: %d %s", status, b)
	}
	checkEnded(t, "revoked key", st, ws, "revoked", 8*time.Second)
	if out := byTicket.ended(t, "ticket of a revoked key", 8*time.Second); !strings.Contains(out, "revoked") {
		t.Errorf("the ticket's stream ended with %q, want the revocation", out)
	}

	// A token's streams end when it expires (exp in 3 s, leeway 1 s).
	exp := time.Now().Add(3 * time.Second)
	c := claims(hsIssuer, "errand", 0, "org", "acme", "roles", "reporter")
	c["exp"] = exp.Unix()
	tok := sign(t, jwt.SigningMethodHS256, []byte(hsSecret), c, "")
	st = openSSE(t, s, "/v1/channels/orders.eu/events", tok)
	ws = dialAuth(t, s, tok)
	wsSubscribe(t, ws, "orders.eu")
	checkEnded(t, "expired token", st, ws, "expired", time.Until(exp)+6*time.Second)
	if time.Now().Before(exp) {
		t.Errorf("the token's streams ended before it expired")
	}
}

// TestSecurityAuditFlood: 8 clients sending bad tokens for 3 s write a few
// audit rows with counts, not one per request; paths are cut short; a tenant's
// admin sees none of them, the operator all.
func TestSecurityAuditFlood(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, authzConfig(""), true)
	long := "/v1/jobs/" + strings.Repeat("x", 3000)
	expired := sign(t, jwt.SigningMethodHS256, []byte(hsSecret), claims(hsIssuer, "errand", -time.Hour, "org", "acme"), "")
	var sent atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(3 * time.Second)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Now().Before(stop); n++ {
				path, tok := "/v1/me", "ek_unknown_"+strconv.Itoa(n) // a new unknown key each time
				switch (i + n) % 3 {
				case 1:
					path, tok = long+strconv.Itoa(n), "garbage"
				case 2:
					tok = expired
				}
				req, _ := http.NewRequest("GET", s.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 401 {
					sent.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	total := sent.Load()
	// Every failure is counted: the first of each kind as a row, the rest in a
	// count when the 2 s window ends.
	re := regexp.MustCompile(`^(\d+) more failed from `)
	deadline := time.Now().Add(15 * time.Second)
	for {
		es := auditEntries(t, s, bootOps, "outcome=failed")
		var counted int64
		longest := 0
		for _, e := range es {
			longest = max(longest, len(e.Resource))
			counted++
			if m := re.FindStringSubmatch(e.Detail); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				counted += n - 1
			}
		}
		if counted == total || time.Now().After(deadline) {
			if longest > 140 {
				t.Errorf("an audit resource of %d bytes, want it cut to what errand chose to keep", longest)
			}
			t.Logf("%d failed authentications, %d audit rows counting %d", total, len(es), counted)
			if total < 200 || len(es) > 40 {
				t.Errorf("%d failed authentications wrote %d audit rows, want a few (and the flood to be a flood)", total, len(es))
			}
			if counted != total {
				t.Errorf("%d failed authentications, the audit log counts %d in %d rows", total, counted, len(es))
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if es := auditEntries(t, s, bootA, ""); len(es) != 0 {
		t.Errorf("acme's admin sees %d audit entries of unknown callers, want none: %+v", len(es), es[0])
	}
}

// TestSecurityLeaseRedaction: lease ids are bearer capabilities; their tokens
// never reach the server log or the audit log, right or wrong.
func TestSecurityLeaseRedaction(t *testing.T) {
	t.Parallel()
	s := startServerEnv(t, authzConfig(""), true, "ERRAND_LOG__LEVEL=debug") // every request is logged
	_, worker := newKey(t, s, bootA, "worker", "worker")
	_, reporter := newKey(t, s, bootA, "reporter", "reporter")
	var tokens []string
	for range 2 {
		submitAs(t, s, bootA, "echo")
	}
	_, ls := leaseAs(t, s, worker, 2, "echo")
	if len(ls) != 2 {
		t.Fatalf("leases %+v", ls)
	}
	right, other := ls[0].ID, ls[1].ID
	jobPart, tok, _ := strings.Cut(right, ".")
	wrong := jobPart + "." + strings.Repeat("0", 32)
	tokens = append(tokens, tok, strings.Repeat("0", 32), strings.SplitN(other, ".", 2)[1])
	calls := []struct{ path, body, token string }{
		{"/v1/leases/" + right + "/heartbeat", `{}`, worker},
		{"/v1/leases/" + wrong + "/heartbeat", `{}`, worker},
		{"/v1/leases/" + wrong + "/complete", `{}`, worker},
		{"/v1/leases/" + wrong + "/fail", `{}`, worker},
		{"/v1/leases/" + right + "/heartbeat", `{}`, reporter},    // 403: may lease nothing
		{"/v1/leases/" + right + "/heartbeat", `{}`, "ek_nobody"}, // 401
		{"/v1/leases/" + other + "/heartbeat", `{}`, bootB},       // another tenant's
		{"/v1/leases/" + right + "/complete", `{"result":1}`, worker},
		{"/v1/leases/" + other + "/fail", `{"error":{"code":"x"},"retry":false}`, worker},
	}
	for _, c := range calls {
		s.call("POST", c.path, c.body, c.token)
	}
	s.call("POST", "/v1/leases/complete", `{"completions":[{"lease_id":"`+right+`"},{"lease_id":"`+wrong+`"}]}`, worker)
	waitLog(t, s, `"status":409`, 5*time.Second)
	time.Sleep(300 * time.Millisecond) // the last lines of the log
	var entries []errand.AuditEntry
	for _, tok := range []string{bootA, bootOps} {
		entries = append(entries, auditEntries(t, s, tok, "")...)
	}
	raw, _ := json.Marshal(entries)
	if !strings.Contains(string(raw), errand.RedactLeases(right)) || !strings.Contains(s.logs.String(), "[redacted]") {
		t.Errorf("the lease denials are not on record, or not redacted:\n%s", raw)
	}
	for _, tok := range tokens {
		if strings.Contains(s.logs.String(), tok) {
			t.Errorf("the server log holds a lease token %s…", tok[:8])
		}
		if strings.Contains(string(raw), tok) {
			t.Errorf("the audit log holds a lease token %s…", tok[:8])
		}
	}
}

// TestSecurityRotateKey: rotating the cluster's signing key takes the
// operator-level oauth:rotate-key@*; a tenant's admin and keys:manage may not.
func TestSecurityRotateKey(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, authzConfig(""), true)
	_, km := newKey(t, s, bootA, "keymaster", "keymaster")
	for name, tok := range map[string]string{"acme's admin": bootA, "keys:manage": km, "globex's admin": bootB} {
		if status, code, b := s.call("POST", "/v1/oauth/rotate-key", "", tok); status != 403 || code != "forbidden" {
			t.Errorf("%s rotates the signing key: %d %s, want 403", name, status, b)
		}
	}
	if status, _, b := s.call("POST", "/v1/oauth/rotate-key", "", bootOps); status != 200 || !strings.Contains(string(b), "kid") {
		t.Errorf("the operator rotates the signing key: %d %s", status, b)
	}
}
