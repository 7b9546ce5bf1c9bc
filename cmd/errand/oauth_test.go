package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/errandhq/errand"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestOAuthClientCredentials gets tokens with the standard Go OAuth 2.0 client
// (both client authentication styles), uses them, verifies them with an
// independent JOSE library (npm jose) against /.well-known/jwks.json, rotates
// errand's signing key and checks old tokens still work until they expire.
func TestOAuthClientCredentials(t *testing.T) {
	t.Parallel()
	requireNode(t)
	s := startServerWith(t, testConfig+fmt.Sprintf(`auth:
  roles:
    reporter: ["jobs:submit:generate-*", "jobs:read:own"]
    worker: ["workers:lease:*"]
    operator: ["oauth:rotate-key@*"]
  api_keys:
    - { name: boot, sha256: %s, roles: [admin], tenant: acme }
    - { name: ops, sha256: %s, roles: [operator], tenant: ops }
  oauth: { token_ttl: 5m }
`, sha256Hex(bootA), sha256Hex(bootOps)), true)
	_, _, b := s.call("POST", "/v1/keys", `{"name":"svc","roles":["reporter","worker"]}`, bootA)
	var key struct{ ID, Token string }
	mustJSON(t, b, &key)
	ctx := ctxTimeout(t, 30*time.Second)
	var tokens []string
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cc := clientcredentials.Config{ClientID: key.ID, ClientSecret: key.Token, TokenURL: s.URL + "/v1/oauth/token",
			Scopes: []string{"reporter"}, AuthStyle: style}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("client credentials (auth style %d): %v", style, err)
		}
		if tok.TokenType != "Bearer" || time.Until(tok.Expiry) < 4*time.Minute || time.Until(tok.Expiry) > 6*time.Minute {
			t.Errorf("token type %q, expires in %v; want Bearer, ~5m", tok.TokenType, time.Until(tok.Expiry))
		}
		// The client the package builds sends it; errand sees the key's principal with the scoped roles.
		resp, err := cc.Client(ctx).Get(s.URL + "/v1/me")
		if err != nil {
			t.Fatal(err)
		}
		var p errand.Principal
		json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != 200 || p.Subject != key.ID || p.Tenant != "acme" || p.Via != "oauth" || strings.Join(p.Roles, ",") != "reporter" {
			t.Errorf("/v1/me with the access token = %d %+v, want %s in acme via oauth with roles [reporter]", resp.StatusCode, p, key.ID)
		}
		tokens = append(tokens, tok.AccessToken)
	}
	// The scope narrowed the roles: leasing is refused although the key may.
	if status, code, _ := s.call("POST", "/v1/leases", `{"operations":["echo"]}`, tokens[0]); status != 403 || code != "forbidden" {
		t.Errorf("lease with a reporter-scoped token = %d %s, want 403", status, code)
	}
	bad := []struct {
		name, body string
		header     []string
		status     int
		code       string
	}{
		{"wrong secret", "grant_type=client_credentials&client_id=" + key.ID + "&client_secret=ek_wrong", nil, 401, "invalid_client"},
		{"secret of another client id", "grant_type=client_credentials&client_id=key_other&client_secret=" + key.Token, nil, 401, "invalid_client"},
		{"no client", "grant_type=client_credentials", nil, 401, "invalid_client"},
		{"password grant", "grant_type=password&username=a&password=b", nil, 400, "unsupported_grant_type"},
		{"scope beyond the key", "grant_type=client_credentials&scope=admin&client_id=" + key.ID + "&client_secret=" + key.Token, nil, 400, "invalid_scope"},
		{"two methods", "grant_type=client_credentials&client_secret=" + key.Token, []string{"Authorization", "Basic " + basic(key.ID, key.Token)}, 400, "invalid_request"},
	}
	for _, c := range bad {
		status, _, b := s.do("POST", "/v1/oauth/token", c.body, append([]string{"Content-Type", "application/x-www-form-urlencoded"}, c.header...)...)
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		if status != c.status || e.Error != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, b, c.status, c.code)
		}
	}

	// Independent verification against the published JWKS, then a key rotation.
	verify := func(toks ...string) []map[string]any {
		t.Helper()
		out, err := node(t, "verify-jwt.mjs", append([]string{s.URL + "/.well-known/jwks.json", "errand", "errand"}, toks...)...).Output()
		if err != nil {
			t.Fatalf("verify-jwt.mjs: %v\n%s", err, out)
		}
		var res []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var m map[string]any
			mustJSON(t, []byte(l), &m)
			res = append(res, m)
		}
		return res
	}
	res := verify(tokens[0], tokens[0][:len(tokens[0])-4]+"AAAA")
	if res[0]["ok"] != true || res[0]["payload"].(map[string]any)["tenant"] != "acme" || res[1]["ok"] != false {
		t.Fatalf("jose verification = %v, want the token valid (tenant acme) and the tampered one refused", res)
	}
	oldKid := res[0]["kid"]
	_, _, b = s.call("POST", "/v1/oauth/rotate-key", "", bootOps)
	cc := clientcredentials.Config{ClientID: key.ID, ClientSecret: key.Token, TokenURL: s.URL + "/v1/oauth/token"}
	fresh, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res = verify(tokens[0], fresh.AccessToken)
	if res[0]["ok"] != true || res[1]["ok"] != true || res[0]["kid"] != oldKid || res[1]["kid"] == oldKid {
		t.Fatalf("after rotation (%s): jose = %v, want the old token (kid %v) and the new one (another kid) both valid", b, res, oldKid)
	}
	for i, tok := range []string{tokens[0], fresh.AccessToken} {
		if status, _, b := s.call("GET", "/v1/me", "", tok); status != 200 {
			t.Errorf("token %d after rotation: %d %s", i, status, b)
		}
	}
	_, _, jwks := s.do("GET", "/.well-known/jwks.json", "")
	var set struct{ Keys []map[string]string }
	mustJSON(t, jwks, &set)
	if len(set.Keys) != 2 || set.Keys[0]["alg"] != "ES256" || set.Keys[0]["d"] != "" {
		t.Errorf("JWKS after rotation = %s, want two public ES256 keys", jwks)
	}
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func requireNode(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join("..", "..", "e2e", "js", "node_modules", "jose")); err != nil {
		t.Fatalf("the npm clients are not installed (run ./test.sh, or npm ci in e2e/js): %v", err)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and returns its pool.
func writeCert(t *testing.T, dir, serial string) *x509.CertPool {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	n, _ := new(big.Int).SetString(serial, 10)
	tmpl := &x509.Certificate{SerialNumber: n, Subject: pkix.Name{CommonName: "errand test " + serial},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// TestTLS serves HTTPS and WSS from a test certificate: HTTP/2 is negotiated,
// TLS 1.1 is refused, a WebSocket works over TLS, and SIGHUP loads a new
// certificate without a restart.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pool := writeCert(t, dir, "1001")
	s := startServerWith(t, testConfig+fmt.Sprintf("tls: { cert_file: %q, key_file: %q }\n",
		filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")), false)
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("URL %s, want https", s.URL)
	}
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := h2.Post(s.URL+"/v1/jobs", "application/json", strings.NewReader(`{"operation":"echo"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 || resp.Proto != "HTTP/2.0" || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
		t.Fatalf("POST over TLS = %d %s (ALPN %v), want 202 over HTTP/2", resp.StatusCode, resp.Proto, resp.TLS)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts == "" {
		t.Errorf("no HSTS header over TLS")
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get(s.URL + "/healthz"); err == nil {
		t.Errorf("TLS 1.1 handshake succeeded, want it refused")
	}

	// WSS (HTTP/1.1 upgrade over TLS).
	wss := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c, _, err := websocket.Dial(ctxTimeout(t, 5*time.Second), "wss"+strings.TrimPrefix(s.URL, "https")+"/v1/ws",
		&websocket.DialOptions{Subprotocols: []string{"errand.v1"}, HTTPClient: wss})
	if err != nil {
		t.Fatalf("WSS: %v", err)
	}
	defer c.CloseNow()
	ctx := ctxTimeout(t, 5*time.Second)
	wsjson.Write(ctx, c, map[string]any{"op": "submit", "id": "r1", "operation": "echo"})
	var ack wsMsg
	if err := wsjson.Read(ctx, c, &ack); err != nil || ack.Op != "ack" {
		t.Fatalf("submit over WSS = %+v %v", ack, err)
	}

	// SIGHUP: a new certificate for new connections, no restart.
	pool2 := writeCert(t, dir, "2002")
	s.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), &tls.Config{RootCAs: pool2})
		if err == nil {
			serial := conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
			conn.Close()
			if serial == "2002" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the server still presents the old certificate (%v)\n%s", err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitLog(t, s, "certificate reloaded", 5*time.Second) // the log is read on another goroutine
}

// TestExposedWithoutTLSWarns: listening beyond loopback without TLS is logged.
func TestExposedWithoutTLSWarns(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, strings.Replace(testConfig, `listen: "127.0.0.1:0"`, `listen: "0.0.0.0:0"`, 1), false)
	if !strings.Contains(s.logs.String(), "non-loopback address without TLS") {
		t.Fatalf("no warning:\n%s", s.logs.String())
	}
}
