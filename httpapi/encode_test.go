package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/errandhq/errand"
)

// The answers that write their own JSON must write what encoding/json writes
// for the same shapes.
func TestAppendersMatchEncodingJSON(t *testing.T) {
	now := time.Date(2026, 11, 22, 16, 4, 25, 310801697, time.UTC)
	j := &errand.Job{ID: "job_1", Operation: "echo", Status: errand.StatusRunning,
		Input: json.RawMessage(`{"a": "<b>"}`), CreatedAt: now, RunAt: now}
	p := &errand.Problem{Type: "about:blank", Title: "Bad <input> & more", Status: 422, Code: "invalid",
		Errors: []errand.FieldError{{Pointer: "/a", Message: "m"}}}
	plain := func(v any) []byte {
		var buf bytes.Buffer
		if err := newEncoder(&buf).Encode(v); err != nil {
			t.Fatal(err)
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
	}
	cases := []struct {
		name string
		a    appender
		want any
	}{
		{"leases", leaseList{[]errand.Lease{{ID: "lease_job_1.x", ExpiresAt: now, Job: j}, {ID: "lease_2", Job: j}}},
			struct {
				Leases []errand.Lease `json:"leases"`
			}{[]errand.Lease{{ID: "lease_job_1.x", ExpiresAt: now, Job: j}, {ID: "lease_2", Job: j}}}},
		{"no leases", leaseList{[]errand.Lease{}}, struct {
			Leases []errand.Lease `json:"leases"`
		}{[]errand.Lease{}}},
		{"results", batchResults{{LeaseID: "lease_<1>", Job: j}, {LeaseID: "lease_2", Error: p}},
			struct {
				Results []batchResult `json:"results"`
			}{[]batchResult{{LeaseID: "lease_<1>", Job: j}, {LeaseID: "lease_2", Error: p}}}},
		{"brief results", batchResults{{LeaseID: "lease_1", JobID: "job_1", Status: errand.StatusSucceeded}, {LeaseID: "lease_2", Error: p}},
			struct {
				Results []batchResult `json:"results"`
			}{[]batchResult{{LeaseID: "lease_1", JobID: "job_1", Status: errand.StatusSucceeded}, {LeaseID: "lease_2", Error: p}}}},
		{"submitted", submittedList{{Job: j}, {Error: p}}, struct {
			Jobs []submitted `json:"jobs"`
		}{[]submitted{{Job: j}, {Error: p}}}},
		{"job", j, j},
	}
	for _, c := range cases {
		got, want := c.a.AppendJSON(nil), plain(c.want)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, want)
		}
		if !json.Valid(got) {
			t.Errorf("%s: not JSON: %s", c.name, got)
		}
	}
}
