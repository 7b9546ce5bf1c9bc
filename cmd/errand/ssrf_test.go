package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/netguard/netguardtest"
)

// ssrfKey is the admin API key of the SSRF tests' servers.
const ssrfKey = "ek_ssrf_admin_of_acme_for_the_tests"

// ssrfConfig serves with authentication (so without --dev: deliveries may not
// reach loopback unless allow lists it) and a short retry schedule.
func ssrfConfig(allow ...string) string {
	b, _ := json.Marshal(allow)
	return testConfig + fmt.Sprintf(`channels:
  "t.*": {}
webhooks:
  timeout: 2s
  retry_schedule: [0s, 1s, 2s, 2s]
  allow_private: %s
auth:
  api_keys:
    - { name: admin, sha256: %s, roles: [admin], tenant: acme }
`, b, sha256Hex(ssrfKey))
}

// refusal sends a request as the admin and returns the status, the problem's
// first field error and the body.
func refusal(s *server, method, path string, body any) (int, errand.FieldError, string) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	code, _, out := s.call(method, path, string(b), ssrfKey)
	var p errand.Problem
	_ = json.Unmarshal(out, &p)
	var fe errand.FieldError
	if len(p.Errors) > 0 {
		fe = p.Errors[0]
	}
	return code, fe, string(out)
}

// TestE2ESSRF: on the real binary without --dev, every URL of the hostile
// corpus (zone ids, embedded IPv4, other spellings of IPv4, localhost names,
// percent-encoding, userinfo) is refused with 422 and a clear message, as a
// webhook endpoint and as a job's callback_url, and nothing connects to any
// address of this host while events that would be delivered happen.
func TestE2ESSRF(t *testing.T) {
	t.Parallel()
	wire := netguardtest.NewTripwire(t)
	s := startServerWith(t, ssrfConfig(), true)
	for _, h := range netguardtest.HostileURLs(t, wire.Port()) {
		code, fe, body := refusal(s, "POST", "/v1/webhooks", map[string]any{"url": h.URL})
		if code != 422 || fe.Pointer != "/url" || !strings.Contains(fe.Message, h.Want) {
			t.Errorf("POST /v1/webhooks %s: %d %s; want 422 at /url saying %q", h.URL, code, body, h.Want)
		}
		code, fe, body = refusal(s, "POST", "/v1/jobs", map[string]any{"operation": "echo", "callback_url": h.URL})
		if code != 422 || fe.Pointer != "/callback_url" || !strings.Contains(fe.Message, h.Want) {
			t.Errorf("POST /v1/jobs callback_url %s: %d %s; want 422 at /callback_url saying %q", h.URL, code, body, h.Want)
			cancelAccepted(s, body) // its callback falls due: the tripwire sees whether it is sent
		}
	}
	// A job created and canceled: events every endpoint accepted by mistake
	// would be sent.
	_, _, body := refusal(s, "POST", "/v1/jobs", map[string]any{"operation": "echo"})
	cancelAccepted(s, body)
	waitAttempted(t, s, 30*time.Second)
	if hits := wire.Hits(); len(hits) > 0 {
		t.Errorf("errand connected to this host %d times: %v", len(hits), hits[:min(len(hits), 10)])
	}
}

// cancelAccepted cancels the job of a 202 answer, if it is one.
func cancelAccepted(s *server, body string) {
	var j struct{ ID string }
	if json.Unmarshal([]byte(body), &j) == nil && strings.HasPrefix(j.ID, "job_") {
		s.call("POST", "/v1/jobs/"+j.ID+"/cancel", "", ssrfKey)
	}
}

// waitAttempted waits until every delivery has had an attempt.
func waitAttempted(t *testing.T, s *server, within time.Duration) []errand.Delivery {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, _, body := s.call("GET", "/v1/deliveries?limit=250", "", ssrfKey)
		var p deliveryPage
		if code != 200 || json.Unmarshal(body, &p) != nil {
			t.Fatalf("GET /v1/deliveries: %d %s", code, body)
		}
		waiting := 0
		for _, d := range p.Deliveries {
			if d.AttemptCount == 0 {
				waiting++
			}
		}
		if waiting == 0 {
			return p.Deliveries
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries not attempted after %v", waiting, len(p.Deliveries), within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2ESSRFRedirects: with loopback allowed (as --dev allows it), a receiver
// that answers with a redirect to loopback is not followed, for endpoints and
// callbacks and every redirect status; zone ids are refused even so.
func TestE2ESSRFRedirects(t *testing.T) {
	t.Parallel()
	wire := netguardtest.NewTripwire(t)
	s := startServerWith(t, ssrfConfig("127.0.0.0/8", "::1/128"), true)
	targets := []string{"http://127.0.0.1:" + wire.Port() + "/stolen", "http://[::1]:" + wire.Port() + "/stolen",
		"http://localhost:" + wire.Port() + "/stolen", "http://[::1%25lo]:" + wire.Port() + "/stolen"}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var code, target int
		fmt.Sscanf(r.URL.Path, "/%d/%d", &code, &target)
		w.Header().Set("Location", targets[target%len(targets)])
		w.WriteHeader(code)
	}))
	t.Cleanup(receiver.Close)
	codes := []int{301, 302, 303, 307, 308}
	for i, code := range codes {
		u := fmt.Sprintf("%s/%d/%d", receiver.URL, code, i)
		if st, _, body := refusal(s, "POST", "/v1/webhooks", map[string]any{"url": u, "events": []string{"channel:t.x"}}); st != 201 {
			t.Fatalf("POST /v1/webhooks %s: %d %s", u, st, body)
		}
		st, _, body := refusal(s, "POST", "/v1/jobs", map[string]any{"operation": "echo", "callback_url": u})
		if st != 202 {
			t.Fatalf("POST /v1/jobs callback_url %s: %d %s", u, st, body)
		}
		cancelAccepted(s, body)
	}
	for _, u := range []string{"http://[::1%25lo]:" + wire.Port() + "/", "http://[fe80::1%25lo]:" + wire.Port() + "/"} {
		if st, fe, body := refusal(s, "POST", "/v1/webhooks", map[string]any{"url": u}); st != 422 || !strings.Contains(fe.Message, "zone id") {
			t.Errorf("POST /v1/webhooks %s with loopback allowed: %d %s; want 422 (zone id)", u, st, body)
		}
	}
	if st, _, body := s.call("POST", "/v1/channels/t.x/events", `{"type":"x","data":{}}`, ssrfKey); st != 202 {
		t.Fatalf("publish: %d %s", st, body)
	}
	ds := waitAttempted(t, s, 30*time.Second)
	if len(ds) != 2*len(codes) {
		t.Fatalf("%d deliveries, want %d: %+v", len(ds), 2*len(codes), ds)
	}
	for _, d := range ds {
		_, _, body := s.call("GET", "/v1/deliveries/"+d.ID, "", ssrfKey)
		var full errand.Delivery
		mustJSON(t, body, &full)
		a := full.Attempts[0]
		if a.StatusCode < 301 || a.StatusCode > 308 || !strings.Contains(a.Error, "redirects are not followed") {
			t.Errorf("delivery %s (%s): first attempt %+v; want the redirect as the answer", d.ID, d.URL, a)
		}
	}
	if hits := wire.Hits(); len(hits) > 0 {
		t.Errorf("a redirect was followed to this host %d times: %v", len(hits), hits[:min(len(hits), 10)])
	}
}
