package httpapi

import (
	"net/http/httptest"
	"testing"
)

// TestFailureReason: what failed names a handful of reasons, whatever the
// request carried (the metrics' label values are bounded).
func TestFailureReason(t *testing.T) {
	tests := []struct {
		target, auth, want string
	}{
		{"/v1/jobs", "", "missing"},
		{"/v1/jobs", "Bearer ", "missing"},
		{"/v1/jobs?access_token=x", "", "token_in_url"},
		{"/v1/jobs?token=x", "Bearer ek_x", "token_in_url"},
		{"/v1/jobs/job_1/events?ticket=t", "", "ticket"},
		{"/v1/jobs", "Basic dXNlcjpwdw==", "scheme"},
		{"/v1/jobs", "Bearer ek_0123456789", "api_key"},
		{"/v1/jobs", "bearer eyJhbGciOi.x.y", "jwt"},
		{"/v1/jobs", "Bearer anything-else", "jwt"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.target, nil)
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		if got := failureReason(r); got != tt.want {
			t.Errorf("failureReason(%s, %q) = %q, want %q", tt.target, tt.auth, got, tt.want)
		}
	}
}
