package main

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/errandhq/errand"
	"github.com/golang-jwt/jwt/v5"
)

const (
	hsIssuer   = "https://hs.example"
	rsIssuer   = "https://rs.example"
	jwksIssuer = "https://jwks.example"
	hsSecret   = "test-shared-secret-0123456789abcdef"
	bootA      = "ek_bootstrap_admin_of_acme_for_the_tests"
	bootB      = "ek_bootstrap_admin_of_globex_for_tests"
	bootOps    = "ek_bootstrap_operator_for_the_tests_xy"
)

// secureConfig serves two tenants' bootstrap admins, an operator, three JWT
// issuers and narrow roles.
func secureConfig(rsaPEM, jwksURL string) string {
	indented := "        " + strings.ReplaceAll(strings.TrimSpace(rsaPEM), "\n", "\n        ")
	cfg := strings.Replace(testConfig, "http: { max_body_bytes: 65536 }",
		`http: { max_body_bytes: 65536, max_streams_per_principal: 3, cors: { origins: ["https://app.example"] } }`, 1)
	return cfg + fmt.Sprintf(`channels:
  "orders.*": { history: 1h }
  "secret.*": { history: 1h }
auth:
  roles:
    reporter: ["jobs:submit:generate-*", "jobs:read:own", "channels:subscribe:orders.*"]
    worker: ["workers:lease:echo"]
    operator: ["audit:read@*", "oauth:rotate-key@*", "workers:lease:*@*"]
  api_keys:
    - { name: boot-a, sha256: %s, roles: [admin], tenant: acme }
    - { name: boot-b, sha256: %s, roles: [admin], tenant: globex }
    - { name: boot-ops, sha256: %s, roles: [operator], tenant: ops }
  jwt:
    - { issuer: %q, audience: errand, secret: %q, claims: { tenant: org } }
    - issuer: %q
      audience: [errand, other]
      tenant: acme
      public_keys:
      - |
%s
    - { issuer: %q, audience: errand, jwks_url: %q, tenant: acme }
`, sha256Hex(bootA), sha256Hex(bootB), sha256Hex(bootOps), hsIssuer, hsSecret, rsIssuer, indented, jwksIssuer, jwksURL)
}

// jwksServer serves a JWKS that the test can change (key rotation).
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey
	hits int
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{keys: map[string]*rsa.PrivateKey{}}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		j.hits++
		var keys []map[string]string
		for kid, k := range j.keys {
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(j.Close)
	return j
}

// rotate replaces the served keys with one new key and returns it.
func (j *jwksServer) rotate(t *testing.T, kid string) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	j.keys = map[string]*rsa.PrivateKey{kid: k}
	j.mu.Unlock()
	return k
}

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(iss string, aud any, exp time.Duration, extra ...any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": iss, "aud": aud, "sub": "user-1", "iat": now.Unix(), "exp": now.Add(exp).Unix()}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i].(string)] = extra[i+1]
	}
	return c
}

// call sends a request with a bearer token and returns the status, the
// problem code and the body.
func (s *server) call(method, path, body, token string, header ...string) (int, string, []byte) {
	s.t.Helper()
	if token != "" {
		header = append(header, "Authorization", "Bearer "+token)
	}
	status, _, b := s.do(method, path, body, header...)
	var p struct{ Code string }
	_ = json.Unmarshal(b, &p)
	return status, p.Code, b
}

// denial is an audit entry the suite expects.
type denial struct{ subject, action, resource, outcome string }

// TestSecurity is the security suite on the real binary: every attempt is
// refused with the right status, and every refusal is in the audit log.
func TestSecurity(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	rsaPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	jw := newJWKSServer(t)
	jwksKey1 := jw.rotate(t, "k1")
	s := startServerWith(t, secureConfig(rsaPEM, jw.URL), true)
	var want []denial
	var secrets []string
	expect := func(name string, status int, code string, method, path, body, token string, header ...string) []byte {
		t.Helper()
		got, gotCode, b := s.call(method, path, body, token, header...)
		if got != status || gotCode != code {
			t.Errorf("%s: %s %s = %d %s, want %d %s\n%s", name, method, path, got, gotCode, status, code, truncate(b))
		}
		return b
	}
	key := func(role, name string) (id, token string) {
		t.Helper()
		b := expect("create key "+name, 201, "", "POST", "/v1/keys", fmt.Sprintf(`{"name":%q,"roles":[%q]}`, name, role), bootA)
		var k struct{ ID, Token, Tenant string }
		mustJSON(t, b, &k)
		if k.Tenant != "acme" || !strings.HasPrefix(k.Token, "ek_") {
			t.Fatalf("created key %s", b)
		}
		secrets = append(secrets, k.Token)
		return k.ID, k.Token
	}
	repID, reporter := key("reporter", "reports-app")
	workerID, workerTok := key("worker", "echo-worker")
	secrets = append(secrets, bootA, bootB, bootOps)

	// Tokens that must not get in.
	failed := func(name, path, token, detail string, header ...string) {
		t.Helper()
		b := expect(name, 401, "unauthorized", "GET", path, "", token, header...)
		if !strings.Contains(string(b), detail) {
			t.Errorf("%s: detail %s, want it to say %q", name, b, detail)
		}
		want = append(want, denial{"", "authenticate", "GET " + strings.Split(path, "?")[0], errand.AuditFailed})
		if token != "" {
			secrets = append(secrets, token)
		}
	}
	failed("no token", "/v1/jobs", "", "no bearer token")
	failed("expired token", "/v1/me", sign(t, jwt.SigningMethodHS256, []byte(hsSecret), claims(hsIssuer, "errand", -10*time.Minute, "org", "acme"), ""), "expired")
	failed("wrong issuer", "/v1/me", sign(t, jwt.SigningMethodHS256, []byte(hsSecret), claims("https://evil.example", "errand", time.Hour, "org", "acme"), ""), "not trusted")
	failed("wrong audience", "/v1/me", sign(t, jwt.SigningMethodHS256, []byte(hsSecret), claims(hsIssuer, "someone-else", time.Hour, "org", "acme"), ""), "audience")
	failed("alg none", "/v1/me", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(hsIssuer, "errand", time.Hour, "org", "acme"), ""), "algorithm")
	failed("HS256 signed with the RS256 public key", "/v1/me", sign(t, jwt.SigningMethodHS256, []byte(rsaPEM), claims(rsIssuer, "errand", time.Hour), ""), "algorithm")
	failed("RS256 token for the HS issuer", "/v1/me", sign(t, jwt.SigningMethodRS256, rsaKey, claims(hsIssuer, "errand", time.Hour, "org", "acme"), ""), "algorithm")
	failed("token in the URL", "/v1/jobs?access_token="+bootA, "", "not accepted in URLs")
	failed("garbage", "/v1/me", "not-a-token", "neither an API key nor a JWT")
	failed("no tenant claim", "/v1/me", sign(t, jwt.SigningMethodHS256, []byte(hsSecret), claims(hsIssuer, "errand", time.Hour), ""), "claim")
	failed("tenant claim other than the issuer's fixed tenant", "/v1/me",
		sign(t, jwt.SigningMethodRS256, rsaKey, claims(rsIssuer, "errand", time.Hour, "tenant", "globex"), ""), "another tenant")
	failed("unknown crit extension", "/v1/me", critToken(t), "crit")
	noAud := claims(hsIssuer, "errand", time.Hour, "org", "acme")
	delete(noAud, "aud")
	failed("no aud claim", "/v1/me", sign(t, jwt.SigningMethodHS256, []byte(hsSecret), noAud, ""), "no aud claim")

	// Good tokens of each kind get in, as who they say.
	me := func(name, token, subject, tenant, via string) {
		t.Helper()
		b := expect(name, 200, "", "GET", "/v1/me", "", token)
		var p errand.Principal
		mustJSON(t, b, &p)
		if p.Subject != subject || p.Tenant != tenant || p.Via != via {
			t.Errorf("%s: /v1/me = %s, want %s in %s via %s", name, b, subject, tenant, via)
		}
	}
	hsGood := sign(t, jwt.SigningMethodHS256, []byte(hsSecret), claims(hsIssuer, "errand", time.Hour, "org", "acme", "roles", "reporter"), "")
	me("HS256 token", hsGood, "user-1", "acme", "jwt")
	me("RS256 token (audience list)", sign(t, jwt.SigningMethodRS256, rsaKey, claims(rsIssuer, []string{"other"}, time.Hour), ""), "user-1", "acme", "jwt")
	me("RS256 token naming the issuer's fixed tenant", sign(t, jwt.SigningMethodRS256, rsaKey, claims(rsIssuer, "errand", time.Hour, "tenant", "acme"), ""), "user-1", "acme", "jwt")
	me("JWKS token", sign(t, jwt.SigningMethodRS256, jwksKey1, claims(jwksIssuer, "errand", time.Hour), "k1"), "user-1", "acme", "jwt")
	me("bootstrap key", bootA, "boot-a", "acme", "api_key")
	me("reporter key", reporter, repID, "acme", "api_key")
	secrets = append(secrets, hsGood)

	// A revoked key stops working at once.
	revID, revoked := key("reporter", "short-lived")
	me("key before revocation", revoked, revID, "acme", "api_key")
	expect("revoke", 200, "", "DELETE", "/v1/keys/"+revID, "", bootA)
	failed("revoked key", "/v1/me", revoked, "not valid")

	// RBAC: a role without the permission is refused with 403.
	deny := func(name string, status int, code, method, path, body, token, subject, action, resource string) {
		t.Helper()
		expect(name, status, code, method, path, body, token)
		want = append(want, denial{subject, action, resource, errand.AuditDenied})
	}
	deny("reporter submits echo", 403, "forbidden", "POST", "/v1/jobs", `{"operation":"echo"}`, reporter, repID, "jobs:submit", "echo")
	expect("reporter submits generate-report", 202, "", "POST", "/v1/jobs", `{"operation":"generate-report","input":{"type":"monthly"}}`, reporter)
	deny("worker leases generate-report", 403, "forbidden", "POST", "/v1/leases", `{"operations":["generate-report"]}`, workerTok, workerID, "workers:lease", "generate-report")
	expect("worker leases echo", 200, "", "POST", "/v1/leases", `{"operations":["echo"]}`, workerTok)
	deny("reporter leases", 403, "forbidden", "POST", "/v1/leases", `{"operations":["echo"]}`, reporter, repID, "workers:lease", "echo")
	deny("reporter manages webhooks", 403, "forbidden", "GET", "/v1/webhooks", "", reporter, repID, "webhooks:manage", "webhooks")
	deny("reporter makes keys", 403, "forbidden", "POST", "/v1/keys", `{"name":"x","roles":["admin"]}`, reporter, repID, "keys:manage", "api keys")
	deny("reporter reads the audit log", 403, "forbidden", "GET", "/v1/audit", "", reporter, repID, "audit:read", "audit log")
	deny("reporter publishes", 403, "forbidden", "POST", "/v1/channels/orders.eu/events", `{"type":"x"}`, reporter, repID, "channels:publish", "orders.eu")
	deny("reporter reads a forbidden channel", 403, "forbidden", "GET", "/v1/channels/secret.plans/events", "", reporter, repID, "channels:subscribe", "secret.plans")
	deny("SSE to a forbidden channel", 403, "forbidden", "GET", "/v1/channels/secret.plans/events", "", reporter, repID, "channels:subscribe", "secret.plans")
	expect("SSE header check", 403, "forbidden", "GET", "/v1/channels/secret.plans/events", "", reporter, "Accept", "text/event-stream")

	// Tenancy: tenant B's job is not found for tenant A, whatever A's role.
	b := expect("globex submits", 202, "", "POST", "/v1/jobs", `{"operation":"echo"}`, bootB)
	var jobB errand.Job
	mustJSON(t, b, &jobB)
	deny("acme reporter reads a globex job", 404, "job_not_found", "GET", "/v1/jobs/"+jobB.ID, "", reporter, repID, "jobs:read", jobB.ID)
	deny("acme admin reads a globex job", 404, "job_not_found", "GET", "/v1/jobs/"+jobB.ID, "", bootA, "boot-a", "jobs:read", jobB.ID)
	deny("acme admin cancels a globex job", 404, "job_not_found", "POST", "/v1/jobs/"+jobB.ID+"/cancel", "", bootA, "boot-a", "jobs:cancel", jobB.ID)
	deny("acme admin deletes a globex job", 404, "job_not_found", "DELETE", "/v1/jobs/"+jobB.ID, "", bootA, "boot-a", "jobs:delete", jobB.ID)
	deny("acme admin watches a globex job", 404, "job_not_found", "GET", "/v1/jobs/"+jobB.ID+"/events", "", bootA, "boot-a", "jobs:read", jobB.ID)
	expect("missing job (not a denial)", 404, "job_not_found", "GET", "/v1/jobs/job_01M81RYD8SE05S6PANS086XZ21", "", bootA)
	b = expect("acme admin submits", 202, "", "POST", "/v1/jobs", `{"operation":"generate-report","input":{"type":"weekly"}}`, bootA)
	var jobA errand.Job
	mustJSON(t, b, &jobA)
	deny("reporter reads a job it does not own", 404, "job_not_found", "GET", "/v1/jobs/"+jobA.ID, "", reporter, repID, "jobs:read", jobA.ID)
	if _, _, b := s.call("GET", "/v1/jobs", "", reporter); strings.Contains(string(b), jobA.ID) || strings.Contains(string(b), jobB.ID) {
		t.Errorf("the reporter's job list shows others' jobs: %s", truncate(b))
	}
	if _, _, b := s.call("GET", "/v1/jobs", "", bootA); strings.Contains(string(b), jobB.ID) {
		t.Errorf("acme's job list shows a globex job: %s", truncate(b))
	}

	// WebSocket: the same rules on every op.
	ws := dialAuth(t, s, reporter)
	wsDo := func(m map[string]any) wsMsg {
		t.Helper()
		ctx := ctxTimeout(t, 5*time.Second)
		if err := wsjson.Write(ctx, ws, m); err != nil {
			t.Fatal(err)
		}
		var got wsMsg
		if err := wsjson.Read(ctx, ws, &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	wsCheck := func(name string, m map[string]any, op string, status float64) {
		t.Helper()
		got := wsDo(m)
		if got.Op != op || (status != 0 && got.Error["status"] != status) {
			t.Errorf("%s over WebSocket = %+v, want %s %v", name, got, op, status)
		}
	}
	wsCheck("subscribe to a forbidden channel", map[string]any{"op": "subscribe", "id": "s1", "channel": "secret.plans"}, "error", 403)
	want = append(want, denial{repID, "channels:subscribe", "secret.plans", errand.AuditDenied})
	wsCheck("subscribe to another tenant's job", map[string]any{"op": "subscribe", "id": "s2", "job": jobB.ID}, "error", 404)
	want = append(want, denial{repID, "jobs:read", jobB.ID, errand.AuditDenied})
	wsCheck("submit a forbidden operation", map[string]any{"op": "submit", "id": "r1", "operation": "echo"}, "error", 403)
	wsCheck("publish", map[string]any{"op": "publish", "id": "p1", "channel": "orders.eu", "type": "x"}, "error", 403)
	wsCheck("subscribe to an allowed channel", map[string]any{"op": "subscribe", "id": "s3", "channel": "orders.eu"}, "ack", 0)

	// Tickets: single use, short-lived, only on event streams.
	mkTicket := func() string {
		b := expect("ticket", 201, "", "POST", "/v1/tickets", "", reporter)
		var tk struct{ Ticket string }
		mustJSON(t, b, &tk)
		secrets = append(secrets, tk.Ticket)
		return tk.Ticket
	}
	b = expect("reporter submits", 202, "", "POST", "/v1/jobs", `{"operation":"generate-report","input":{"type":"monthly"}}`, reporter)
	var own errand.Job
	mustJSON(t, b, &own)
	tk := mkTicket()
	sseFirst(t, s, "/v1/jobs/"+own.ID+"/events?ticket="+tk, "event: job.created")
	failed("reused ticket", "/v1/jobs/"+own.ID+"/events?ticket="+tk, "", "already used", "Accept", "text/event-stream")
	failed("ticket on a non-stream route", "/v1/jobs?ticket="+mkTicket(), "", "only by event streams")
	wsTicket := mkTicket()
	c2, _, err := websocket.Dial(ctxTimeout(t, 5*time.Second), "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws?ticket="+wsTicket,
		&websocket.DialOptions{Subprotocols: []string{"errand.v1"}})
	if err != nil {
		t.Fatalf("WebSocket with a ticket: %v", err)
	}
	c2.CloseNow()
	_, resp, err := websocket.Dial(ctxTimeout(t, 5*time.Second), "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws?ticket="+wsTicket,
		&websocket.DialOptions{Subprotocols: []string{"errand.v1"}})
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("WebSocket with a used ticket: %v %v, want 401", resp, err)
	}
	want = append(want, denial{"", "authenticate", "GET /v1/ws", errand.AuditFailed})

	// JWKS rotation is followed without a restart.
	jwksKey2 := jw.rotate(t, "k2")
	me("JWKS token after rotation", sign(t, jwt.SigningMethodRS256, jwksKey2, claims(jwksIssuer, "errand", time.Hour), "k2"), "user-1", "acme", "jwt")
	failed("token of the rotated-out JWKS key", "/v1/me", sign(t, jwt.SigningMethodRS256, jwksKey1, claims(jwksIssuer, "errand", time.Hour, "jti", "new"), "k1"), "cannot be verified")

	checkStreamLimit(t, s, hsGood)
	checkCORS(t, s)
	checkAudit(t, s, want)
	out := cli(t, "", "audit", "tail", "--server", s.URL, "--token", bootA, "-n", "1000", "--outcome", "denied")
	if !strings.Contains(out, "denied 403  acme/"+repID+" jobs:submit") || !strings.Contains(out, "jobs:cancel") ||
		strings.Contains(out, "failed 401") {
		t.Errorf("errand audit tail --outcome denied:\n%s", out)
	}
	if out := cli(t, "", "audit", "tail", "--server", s.URL, "--token", reporter); !strings.Contains(out, "error:") {
		t.Errorf("errand audit tail as a reporter:\n%s", out)
	}
	// The operator's command line works on the same store while the server runs.
	cfgFile := filepath.Join(s.dir, "errand.yaml")
	out = cli(t, "", "keys", "create", "--config", cfgFile, "--name", "ops", "--role", "worker", "--tenant", "acme")
	opsToken, _, _ := strings.Cut(out, "\n")
	me("key made on the command line", opsToken, strings.Fields(out[strings.Index(out, "id:"):])[1], "acme", "api_key")
	opsID := strings.Fields(out[strings.Index(out, "id:"):])[1]
	if out := cli(t, "", "keys", "revoke", "--config", cfgFile, opsID); !strings.Contains(out, "revoked "+opsID) {
		t.Errorf("keys revoke: %s", out)
	}
	if out := cli(t, "", "keys", "list", "--config", cfgFile); !strings.Contains(out, "revoked") || !strings.Contains(out, "reports-app") {
		t.Errorf("keys list:\n%s", out)
	}
	if out := cli(t, "", "audit", "tail", "--server", s.URL, "--token", bootA, "--action", "keys:*"); !strings.Contains(out, "cli:") ||
		!strings.Contains(out, "keys:revoke") {
		t.Errorf("the command line's key acts are not in the audit log:\n%s", out)
	}
	secrets = append(secrets, opsToken)
	for _, sec := range secrets {
		if strings.Contains(s.logs.String(), sec) {
			t.Errorf("the server log contains a secret: %s…", sec[:12])
		}
	}
}

// critToken is a well-signed HS256 token whose crit header names an extension
// errand does not know (RFC 7515 §4.1.11: refuse it).
func critToken(t *testing.T) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(hsIssuer, "errand", time.Hour, "org", "acme"))
	tok.Header["crit"] = []string{"urn:example:must-understand"}
	tok.Header["urn:example:must-understand"] = true
	s, err := tok.SignedString([]byte(hsSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func dialAuth(t *testing.T, s *server, token string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctxTimeout(t, 5*time.Second), "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws",
		&websocket.DialOptions{Subprotocols: []string{"errand.v1"}, HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// sseFirst opens an event stream and waits for a line containing want.
func sseFirst(t *testing.T, s *server, path, want string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxTimeout(t, 5*time.Second), "GET", s.URL+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), want) {
			return
		}
	}
	t.Fatalf("GET %s: no %q", path, want)
}

// checkAudit waits until every expected denial is in the audit log (as the
// operator sees it: acme's denials and the failed authentications of unknown
// callers) with its principal, action, resource and time; the acme admin sees
// acme's entries only.
func checkAudit(t *testing.T, s *server, want []denial) {
	t.Helper()
	_, _, b := s.call("GET", "/v1/audit?limit=1000", "", bootA)
	var own struct{ Entries []errand.AuditEntry }
	mustJSON(t, b, &own)
	for _, e := range own.Entries {
		if e.Tenant != "acme" {
			t.Errorf("the acme admin's audit log shows an entry of tenant %q: %+v", e.Tenant, e)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, b := s.call("GET", "/v1/audit?limit=1000", "", bootOps)
		var page struct{ Entries []errand.AuditEntry }
		mustJSON(t, b, &page)
		var missing []denial
		for _, d := range want {
			found := false
			for _, e := range page.Entries {
				if e.Subject == d.subject && e.Action == d.action && e.Resource == d.resource && e.Outcome == d.outcome &&
					time.Since(e.Time) < time.Minute && (d.subject == "" || e.Tenant == "acme") {
					found = true
				}
			}
			if !found {
				missing = append(missing, d)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not in the audit log: %+v\nthe log:\n%s", missing, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkStreamLimit: a principal holds at most three streams here; a fourth is
// refused with 429 until one closes.
func checkStreamLimit(t *testing.T, s *server, token string) {
	t.Helper()
	open := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", s.URL+"/v1/channels/orders.limits/events", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token)
		return http.DefaultClient.Do(req)
	}
	var held []*http.Response
	for i := 0; i < 3; i++ {
		resp, err := open()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i+1, resp, err)
		}
		held = append(held, resp)
	}
	resp, err := open()
	if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth stream = %v %v, want 429 with Retry-After", resp, err)
	}
	resp.Body.Close()
	held[0].Body.Close()
	deadline := time.Now().Add(20 * time.Second) // the server notices the close on its next write (a ping)
	for {
		resp, err := open()
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if resp != nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("a stream slot never came back after a client left")
		}
		s.call("POST", "/v1/channels/orders.limits/events", `{"type":"wake"}`, bootA) // a write finds the closed stream
		time.Sleep(100 * time.Millisecond)
	}
	for _, r := range held[1:] {
		r.Body.Close()
	}
}

// checkCORS: the configured origin may call from a browser; another may not.
func checkCORS(t *testing.T, s *server) {
	t.Helper()
	status, h, _ := s.do("OPTIONS", "/v1/jobs", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type")
	if status != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight from the allowed origin = %d %v", status, h)
	}
	status, h, _ = s.do("OPTIONS", "/v1/jobs", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin = %d %v, want no Access-Control-Allow-Origin", status, h)
	}
	_, h, _ = s.do("GET", "/healthz", "", "Origin", "https://app.example")
	if h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("X-Content-Type-Options") != "nosniff" ||
		h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("GET from the allowed origin: headers %v", h)
	}
	_, _, err := websocket.Dial(ctxTimeout(t, 5*time.Second), "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws",
		&websocket.DialOptions{Subprotocols: []string{"errand.v1"}, HTTPHeader: http.Header{
			"Origin": {"https://evil.example"}, "Authorization": {"Bearer " + bootA}}})
	if err == nil {
		t.Errorf("a WebSocket from another origin was accepted")
	}
}
