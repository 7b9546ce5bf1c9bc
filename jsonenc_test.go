package errand

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// reflected is how a job was rendered before AppendJSON: encoding/json over the
// struct and its links. AppendJSON must write the same bytes.
func reflected(t testing.TB, j *Job) []byte {
	t.Helper()
	type plain Job
	c := *j
	if c.Artifacts == nil {
		c.Artifacts = []Artifact{}
	}
	b, err := json.Marshal(struct {
		*plain
		Links jobLinks `json:"links"`
	}{(*plain)(&c), jobLinks{Self: c.Path(), Events: c.Path() + "/events"}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sampleJobs() []*Job {
	now := time.Date(2026, 11, 22, 16, 4, 25, 310801697, time.UTC)
	later := now.Add(1500 * time.Millisecond).In(time.FixedZone("x", 3600))
	return []*Job{
		{ID: "job_01", Operation: "echo", Status: StatusQueued, Input: json.RawMessage(`{"n":1}`), CreatedAt: now, RunAt: now},
		{ID: "job_02", Operation: "generate-report", Status: StatusSucceeded, Input: json.RawMessage(`{ "type" : "pdf",
			"note": "a <b> & c" }`), Result: json.RawMessage(`"ok"`), Attempt: 2, MaxAttempts: 5, Priority: -3,
			TimeoutSeconds: 30, CancelRequested: true, Metadata: map[string]string{"b": "2", "a": "<1>"},
			CallbackURL: "https://example.com/cb?a=1&b=2", CreatedAt: now, RunAt: later, StartedAt: &now, FinishedAt: &later,
			Artifacts: []Artifact{{Name: "r.pdf", ContentType: "application/pdf", Size: 10, SHA256: "ab", URL: "/x"}}},
		{ID: "job_\"quoted\"\n", Operation: "ünïcode\u2028", Status: StatusFailed, Input: json.RawMessage(`[1,2,"é"]`),
			Error:    &Problem{Code: "handler_error", Detail: "it broke: <html>", Errors: []FieldError{{Pointer: "/a", Message: "m"}}},
			Progress: &Progress{Percent: 42.5, Message: "half"}, Artifacts: []Artifact{}, CreatedAt: now, RunAt: now},
		{ID: "job_04", Status: StatusRunning},
	}
}

func TestAppendJSONMatchesReflection(t *testing.T) {
	for _, j := range sampleJobs() {
		want := reflected(t, j)
		if got := j.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
		}
		if got, _ := json.Marshal(j); !bytes.Equal(got, want) {
			t.Errorf("json.Marshal:\n got %s\nwant %s", got, want)
		}
		for _, tp := range []string{"", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"} {
			l := &Lease{ID: "lease_x.y", ExpiresAt: j.CreatedAt, TraceParent: tp, Job: j}
			lw, _ := json.Marshal(struct {
				ID          string          `json:"lease_id"`
				ExpiresAt   time.Time       `json:"expires_at"`
				TraceParent string          `json:"traceparent,omitempty"`
				Job         json.RawMessage `json:"job"`
			}{l.ID, l.ExpiresAt, l.TraceParent, want})
			if got := l.AppendJSON(nil); !bytes.Equal(got, lw) {
				t.Errorf("Lease.AppendJSON:\n got %s\nwant %s", got, lw)
			}
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("job_1", "echo", `{"a":1}`, `null`, "https://x/<a>&", "k", "v")
	f.Add("j\x00\xff", "op\u2029", ` [ 1 , "<" ] `, `"\u00e9"`, "", "", "")
	f.Fuzz(func(t *testing.T, id, op, input, result, cb, mk, mv string) {
		if !json.Valid([]byte(input)) || !json.Valid([]byte(result)) {
			return
		}
		j := &Job{ID: id, Operation: op, Status: StatusRunning, Input: json.RawMessage(input),
			Result: json.RawMessage(result), CallbackURL: cb, CreatedAt: time.Unix(0, int64(len(id))).UTC()}
		if mk != "" {
			j.Metadata = map[string]string{mk: mv}
		}
		want := reflected(t, j)
		if got := j.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON:\n got %q\nwant %q", got, want)
		}
	})
}
