package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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
		{"leases", leaseList{Leases: []errand.Lease{{ID: "lease_job_1.x", ExpiresAt: now, Job: j}, {ID: "lease_2", Job: j}}},
			struct {
				Leases []errand.Lease `json:"leases"`
			}{[]errand.Lease{{ID: "lease_job_1.x", ExpiresAt: now, Job: j}, {ID: "lease_2", Job: j}}}},
		{"leases and completed", leaseList{Leases: []errand.Lease{{ID: "lease_job_1.x", ExpiresAt: now, Job: j}},
			Completed: []batchResult{{LeaseID: "lease_<0>", JobID: "job_0", Status: errand.StatusSucceeded}, {LeaseID: "lease_2", Error: p}}},
			leaseList{Leases: []errand.Lease{{ID: "lease_job_1.x", ExpiresAt: now, Job: j}},
				Completed: []batchResult{{LeaseID: "lease_<0>", JobID: "job_0", Status: errand.StatusSucceeded}, {LeaseID: "lease_2", Error: p}}}},
		{"no leases", leaseList{Leases: []errand.Lease{}}, struct {
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
		{"jobs", jobList{Jobs: []*errand.Job{j, j}, NextCursor: &p.Code}, jobList{Jobs: []*errand.Job{j, j}, NextCursor: &p.Code}},
		{"last jobs", jobList{Jobs: []*errand.Job{}}, struct {
			Jobs       []*errand.Job `json:"jobs"`
			NextCursor *string       `json:"next_cursor"`
		}{Jobs: []*errand.Job{}}},
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

// A large parted answer is sent on as it is written (no Content-Length), a
// small one whole; both are the bytes AppendJSON writes.
func TestWritePartsStreams(t *testing.T) {
	now := time.Date(2026, 11, 22, 16, 4, 25, 0, time.UTC)
	big := json.RawMessage(`"` + strings.Repeat("x", 100<<10) + `"`)
	for _, n := range []int{1, 20} {
		var jobs []*errand.Job
		for i := range n {
			in := json.RawMessage(`{}`)
			if n > 1 {
				in = big
			}
			jobs = append(jobs, &errand.Job{ID: fmt.Sprintf("job_%d", i), Operation: "echo", Status: errand.StatusQueued,
				Input: in, CreatedAt: now, RunAt: now})
		}
		l := jobList{Jobs: jobs}
		rec := httptest.NewRecorder()
		encode(rec, http.StatusOK, l)
		want := append(l.AppendJSON(nil), '\n')
		if !bytes.Equal(rec.Body.Bytes(), want) {
			t.Fatalf("%d jobs: the answer differs from AppendJSON (%d bytes, want %d)", n, rec.Body.Len(), len(want))
		}
		if cl, streamed := rec.Header().Get("Content-Length"), len(want) > partBytes; (cl == "") != streamed {
			t.Errorf("%d jobs (%d bytes): Content-Length %q; want one only when not streamed", n, len(want), cl)
		}
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%d jobs: %d %q", n, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}
