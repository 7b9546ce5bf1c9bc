package main

import (
	"fmt"
	"testing"
	"time"
)

// TestE2EClientDurations (issue 18, item 19): seconds a client gives are
// bounded before they become durations: an API key's expiry at 10 years
// (1e11 seconds wrapped around to a date in 2273), a lease and its heartbeat
// at the configured maximum however large the number.
func TestE2EClientDurations(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, testConfig+fmt.Sprintf("auth:\n  api_keys:\n    - { name: boot, sha256: %s, roles: [admin], tenant: acme }\n", sha256Hex(bootA)), true)
	auth := []string{"Authorization", "Bearer " + bootA}
	tenYears := 10 * 365 * 24 * 3600
	checkRefusals(t, s, []badInput{
		{"POST", "/v1/keys", `{"name":"k","roles":["admin"],"expires_in_seconds":100000000000}`, 422, "validation_failed", "/expires_in_seconds", nil},
		{"POST", "/v1/keys", `{"name":"k","roles":["admin"],"expires_in_seconds":9223372036854775807}`, 422, "validation_failed", "/expires_in_seconds", nil},
		{"POST", "/v1/keys", fmt.Sprintf(`{"name":"k","roles":["admin"],"expires_in_seconds":%d}`, tenYears+1), 422, "validation_failed", "/expires_in_seconds", nil},
		{"POST", "/v1/keys", `{"name":"k","roles":["admin"],"expires_in_seconds":-1}`, 422, "validation_failed", "/expires_in_seconds", nil},
		{"POST", "/v1/keys", `{"name":"k","roles":["admin"],"expires_in_seconds":1e11}`, 422, "validation_failed", "/expires_in_seconds", nil},
		{"POST", "/v1/jobs", `{"operation":"echo","delay_seconds":100000000000}`, 422, "validation_failed", "/delay_seconds", nil},
		{"POST", "/v1/jobs", `{"operation":"echo","timeout_seconds":9223372036854775807}`, 422, "validation_failed", "/timeout_seconds", nil},
		{"POST", "/v1/leases", `{"operations":["echo"],"wait_seconds":-1e300}`, 400, "invalid_request", "", nil},
	}, auth...)
	code, _, b := s.do("POST", "/v1/keys", fmt.Sprintf(`{"name":"k","roles":["admin"],"expires_in_seconds":%d}`, tenYears), auth...)
	var k struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	mustJSON(t, b, &k)
	if want := time.Now().Add(time.Duration(tenYears) * time.Second); code != 201 || k.ExpiresAt.Sub(want).Abs() > time.Minute {
		t.Fatalf("key for 10 years: %d %s; want 201 expiring about %s", code, b, want)
	}

	// A lease asked for 1e300 seconds gets the longest there is (workers.max_lease, 1h).
	if code, _, b := s.do("POST", "/v1/jobs", `{"operation":"echo"}`, auth...); code != 202 {
		t.Fatalf("submit: %d %s", code, b)
	}
	code, _, b = s.do("POST", "/v1/leases", `{"operations":["echo"],"wait_seconds":1e300,"lease_seconds":1e300}`, auth...)
	var out struct {
		Leases []struct {
			LeaseID   string    `json:"lease_id"`
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"leases"`
	}
	mustJSON(t, b, &out)
	if code != 200 || len(out.Leases) != 1 || !inHour(out.Leases[0].ExpiresAt) {
		t.Fatalf("lease of 1e300 seconds: %d %s; want one lease expiring within the hour", code, b)
	}
	code, _, b = s.do("POST", "/v1/leases/"+out.Leases[0].LeaseID+"/heartbeat", `{"extend_seconds":1.7e308}`, auth...)
	var hb struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	mustJSON(t, b, &hb)
	if code != 200 || !inHour(hb.ExpiresAt) {
		t.Fatalf("heartbeat of 1.7e308 seconds: %d %s; want a lease expiring within the hour", code, b)
	}
	code, _, b = s.do("POST", "/v1/leases/"+out.Leases[0].LeaseID+"/fail", `{"error":{"code":"x"},"retry_after_seconds":1e300}`, auth...)
	if code != 400 {
		t.Fatalf("fail with retry_after_seconds 1e300: %d %s; want 400", code, b)
	}
	// Prefer: wait with an absurd value is ignored, not a 292-year wait.
	start := time.Now()
	code, _, b = s.do("POST", "/v1/jobs", `{"operation":"echo"}`, append([]string{"Prefer", "wait=1e300"}, auth...)...)
	if code != 202 || time.Since(start) > 10*time.Second {
		t.Fatalf("Prefer: wait=1e300: %d %s after %s", code, b, time.Since(start))
	}
}

// inHour reports whether t is in the coming hour (plus a minute for a slow machine).
func inHour(t time.Time) bool {
	now := time.Now()
	return t.After(now) && t.Before(now.Add(time.Hour+time.Minute))
}
