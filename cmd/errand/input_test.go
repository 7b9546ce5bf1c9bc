package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/errandhq/errand"
)

// badInput is one request errand must refuse: the status, code and (when not
// "") the JSON pointer of the first field error.
type badInput struct {
	method, path, body string
	status             int
	code, pointer      string
	header             []string
}

// check sends each request and compares the problem it gets.
func checkRefusals(t *testing.T, s *server, cases []badInput, auth ...string) {
	t.Helper()
	for _, c := range cases {
		h := append(append([]string(nil), auth...), c.header...)
		code, _, body := s.do(c.method, c.path, c.body, h...)
		var p errand.Problem
		_ = json.Unmarshal(body, &p)
		ok := code == c.status && p.Code == c.code
		if c.pointer != "" {
			ok = ok && len(p.Errors) > 0 && p.Errors[0].Pointer == c.pointer
		}
		if !ok {
			t.Errorf("%s %s %.80q: %d %s; want %d %s at %q", c.method, c.path, c.body, code, truncate(body), c.status, c.code, c.pointer)
		}
	}
}

// leaseOne submits an echo job and leases it, returning the lease id.
func leaseOne(t *testing.T, s *server, auth ...string) string {
	t.Helper()
	if code, _, b := s.do("POST", "/v1/jobs", `{"operation":"echo"}`, auth...); code != 202 {
		t.Fatalf("submit: %d %s", code, b)
	}
	code, _, b := s.do("POST", "/v1/leases", `{"operations":["echo"],"wait_seconds":5}`, auth...)
	var out struct {
		Leases []struct {
			LeaseID   string    `json:"lease_id"`
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"leases"`
	}
	mustJSON(t, b, &out)
	if code != 200 || len(out.Leases) != 1 {
		t.Fatalf("lease: %d %s", code, b)
	}
	return out.Leases[0].LeaseID
}

// TestE2EStrictJSON (issue 18, item 18): every JSON body errand decodes refuses
// nesting deeper than 64, numbers beyond float64, invalid UTF-8, duplicate
// member names and names that only match a field when case is ignored —
// with 400 malformed_json or 422 validation_failed and a pointer. What errand
// keeps as it came (input, results, event data) is read back byte for byte.
func TestE2EStrictJSON(t *testing.T) {
	t.Parallel()
	s := startServer(t, channelConfig)
	deep := strings.Repeat("[", 9000) + strings.Repeat("]", 9000)
	lease := leaseOne(t, s)
	checkRefusals(t, s, []badInput{
		{"POST", "/v1/jobs", `{"operation":"echo","input":` + deep + `}`, 400, "malformed_json", "", nil},
		{"POST", "/v1/jobs", `{"operation":"echo","input":{"n":1e999999}}`, 422, "validation_failed", "/input/n", nil},
		{"POST", "/v1/jobs", `{"operation":"echo","input":{"n":[1,-1e400]}}`, 422, "validation_failed", "/input/n/1", nil},
		{"POST", "/v1/jobs", "{\"operation\":\"echo\",\"input\":{\"s\":\"caf\xe9\"}}", 400, "malformed_json", "/input/s", nil},
		{"POST", "/v1/jobs", `{"operation":"echo","input":{"s":"\udc00"}}`, 422, "validation_failed", "/input/s", nil},
		{"POST", "/v1/jobs", `{"operation":"echo","operation":"hybrid"}`, 422, "validation_failed", "/operation", nil},
		{"POST", "/v1/jobs", `{"operation":"echo","input":{"a":1,"a":2}}`, 422, "validation_failed", "/input/a", nil},
		{"POST", "/v1/jobs", `{"OPERATION":"echo"}`, 422, "validation_failed", "/OPERATION", nil},
		{"POST", "/v1/jobs", `{"operation":"echo","Max_Attempts":3}`, 422, "validation_failed", "/Max_Attempts", nil},
		{"POST", "/v1/jobs", `{"operation":"echo","metadata":{"k":"1","k":"2"}}`, 422, "validation_failed", "/metadata/k", nil},
		{"POST", "/v1/job-batches", `{"jobs":[{"operation":"echo"},{"operation":"echo","input":{"x":1e400}}]}`, 422, "validation_failed", "/jobs/1/input/x", nil},
		{"POST", "/v1/job-batches", `{"jobs":[{"operation":"echo","Idempotency_Key":"k"}]}`, 422, "validation_failed", "/jobs/0/Idempotency_Key", nil},
		{"POST", "/generate-report", deep, 400, "malformed_json", "", nil},
		{"POST", "/generate-report", `{"type":"monthly","type":"weekly"}`, 422, "validation_failed", "/type", nil},
		{"POST", "/generate-report", "{\"type\":\"\xff\"}", 400, "malformed_json", "/type", nil},
		{"POST", "/v1/leases", `{"operations":["echo"],"Worker":"w"}`, 422, "validation_failed", "/Worker", nil},
		{"POST", "/v1/leases", `{"operations":["echo"],"lease_seconds":1e999}`, 422, "validation_failed", "/lease_seconds", nil},
		{"POST", "/v1/leases/" + lease + "/heartbeat", `{"progress":{"percent":1,"Message":"m"}}`, 422, "validation_failed", "/progress/Message", nil},
		{"POST", "/v1/leases/" + lease + "/complete", "{\"result\":{\"a\":\"\xc0\xaf\"}}", 400, "malformed_json", "/result/a", nil},
		{"POST", "/v1/leases/" + lease + "/complete", `{"result":` + deep + `}`, 400, "malformed_json", "", nil},
		{"POST", "/v1/leases/" + lease + "/fail", `{"error":{"code":"a","code":"b"}}`, 422, "validation_failed", "/error/code", nil},
		{"POST", "/v1/leases/complete", `{"completions":[{"lease_id":"x","result":{"a":1,"a":1}}]}`, 422, "validation_failed", "/completions/0/result/a", nil},
		{"POST", "/v1/channels/orders.eu/events", `{"type":"t","data":{"k":1,"k":2}}`, 422, "validation_failed", "/data/k", nil},
		{"POST", "/v1/channels/orders.eu/events", `{"Type":"t"}`, 422, "validation_failed", "/Type", nil},
		{"POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/x","URL":"http://127.0.0.1:9/y"}`, 422, "validation_failed", "/URL", nil},
		{"POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/x","events":["job.succeeded","job.failed"],"events":[]}`, 422, "validation_failed", "/events", nil},
	})

	// The lease survived all of that: its job completes with what it sent.
	result := `{"text":"é\u00e9 😀\ud83d\ude00","n":1.5e300,"nested":{"a":[{"b":null}]}}`
	code, _, b := s.do("POST", "/v1/leases/"+lease+"/complete", `{"result":`+result+`}`)
	var j struct {
		ID     string          `json:"id"`
		Input  json.RawMessage `json:"input"`
		Result json.RawMessage `json:"result"`
	}
	mustJSON(t, b, &j)
	if code != 200 || string(j.Result) != result {
		t.Fatalf("complete: %d %s; want the result %s as sent", code, b, result)
	}
	input := `{"s":"caf\u00e9 ☕","deep":` + strings.Repeat("[", 60) + strings.Repeat("]", 60) + `}`
	code, _, b = s.do("POST", "/v1/jobs", `{"operation":"echo","input":`+input+`}`)
	mustJSON(t, b, &j)
	if code != 202 || string(j.Input) != input {
		t.Fatalf("submit: %d %s; want the input %s as sent", code, b, input)
	}
	_, _, b = s.do("GET", "/v1/jobs/"+j.ID, "")
	mustJSON(t, b, &j)
	if string(j.Input) != input {
		t.Fatalf("GET /v1/jobs/%s input = %s, want %s as submitted", j.ID, j.Input, input)
	}

	// WebSocket messages go through the same check.
	ctx := context.Background()
	c := dialWS(t, s)
	for _, send := range []string{`{"op":"ping","id":"a","id":"b"}`, `{"OP":"ping","id":"a"}`,
		`{"op":"publish","id":"p","channel":"orders.eu","type":"t","data":` + deep + `}`,
		"{\"op\":\"submit\",\"id\":\"s\",\"operation\":\"echo\",\"input\":\"\xff\"}"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(send)); err != nil {
			t.Fatal(err)
		}
		var m wsMsg
		if err := wsjson.Read(ctx, c, &m); err != nil {
			t.Fatalf("after %.60s: %v", send, err)
		}
		if m.Op != "error" || (m.Error["code"] != "validation_failed" && m.Error["code"] != "malformed_json") {
			t.Errorf("websocket %.60q → %+v, want an error", send, m)
		}
	}
}

// nulConfig serves the routes that take text fields, on PostgreSQL.
const nulConfig = testConfig + "channels:\n  \"orders.*\": { history: 1h }\n"

// TestE2ENulOverPostgres (issue 18, item 13): a NUL in any field that becomes
// a text column (or a path or query, or an Idempotency-Key that is not UTF-8)
// answers 422/400 before it reaches PostgreSQL, while healthy submits sent in
// the same moment all succeed; JSON kept as bytes (input, metadata) holds
// \u0000 and reads it back.
func TestE2ENulOverPostgres(t *testing.T) {
	t.Parallel()
	s := startServerEnv(t, nulConfig, false, "ERRAND_STORE="+pgURL(t))
	bad := []badInput{
		{"POST", "/v1/jobs", `{"operation":"echo"}`, 422, "validation_failed", "", []string{"Idempotency-Key", "k\xff"}},
		{"POST", "/v1/job-batches", `{"jobs":[{"operation":"echo","idempotency_key":"k\u0000"}]}`, 422, "validation_failed", "/jobs/0/idempotency_key", nil},
		{"POST", "/v1/jobs", `{"operation":"echo\u0000"}`, 422, "validation_failed", "/operation", nil},
		{"POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/x","description":"a\u0000b"}`, 422, "validation_failed", "/description", nil},
		{"POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/x","events":["job.succeeded\u0000"]}`, 422, "validation_failed", "/events/0", nil},
		{"POST", "/v1/leases", `{"operations":["echo"],"worker":"host\u0000"}`, 422, "validation_failed", "/worker", nil},
		{"POST", "/v1/channels/orders.eu/events", `{"type":"t\u0000"}`, 422, "validation_failed", "/type", nil},
		{"GET", "/v1/jobs/job_%00", "", 400, "invalid_request", "", nil},
		{"POST", "/v1/jobs/job_01M81FYDCTE1X91SVCMDMS18K4%00/cancel", "", 400, "invalid_request", "", nil},
		{"GET", "/v1/jobs?operation=echo%00", "", 400, "invalid_request", "", nil},
		{"GET", "/v1/jobs?cursor=%FF", "", 400, "invalid_request", "", nil},
		{"GET", "/v1/webhooks/ep_%C0%AF", "", 400, "invalid_request", "", nil},
		{"POST", "/v1/leases/lease_job_x%00.y/complete", `{}`, 400, "invalid_request", "", nil},
	}
	// All at once, beside healthy submits: none of them may fail because a bad
	// one shared its group commit.
	var wg sync.WaitGroup
	start := make(chan struct{})
	var mu sync.Mutex
	var healthy []string
	for round := range 3 {
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				code, _, b := s.do("POST", "/v1/jobs", fmt.Sprintf(`{"operation":"echo","input":{"r":%d,"i":%d}}`, round, i),
					"Idempotency-Key", fmt.Sprintf("ok-%d-%d", round, i))
				var j struct{ ID string }
				_ = json.Unmarshal(b, &j)
				mu.Lock()
				defer mu.Unlock()
				if code != 202 || j.ID == "" {
					t.Errorf("healthy submit beside bad ones: %d %s", code, truncate(b))
					return
				}
				healthy = append(healthy, j.ID)
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			checkRefusals(t, s, bad)
		}()
	}
	close(start)
	wg.Wait()
	for _, id := range healthy {
		if code, _, b := s.do("GET", "/v1/jobs/"+id, ""); code != 200 {
			t.Errorf("GET acknowledged %s: %d %s", id, code, truncate(b))
		}
	}

	// \u0000 inside JSON kept as bytes is data like any other.
	input, meta := `{"s":"a\u0000b"}`, `{"k\u0000":"v\u0000"}`
	code, _, b := s.do("POST", "/v1/jobs", `{"operation":"echo","input":`+input+`,"metadata":`+meta+`}`)
	var j struct {
		ID       string            `json:"id"`
		Input    json.RawMessage   `json:"input"`
		Metadata map[string]string `json:"metadata"`
	}
	mustJSON(t, b, &j)
	if code != 202 {
		t.Fatalf("submit with \\u0000 in input and metadata: %d %s", code, b)
	}
	_, _, b = s.do("GET", "/v1/jobs/"+j.ID, "")
	mustJSON(t, b, &j)
	if string(j.Input) != input || j.Metadata["k\x00"] != "v\x00" {
		t.Fatalf("read back input %s metadata %q, want %s and %s", j.Input, j.Metadata, input, meta)
	}
	lease := leaseOne(t, s)
	if code, _, b := s.do("POST", "/v1/leases/"+lease+"/fail", `{"error":{"code":"c\u0000","message":"m\u0000"},"retry":false}`); code != 200 {
		t.Fatalf("fail with \\u0000 in the error (kept as JSON): %d %s", code, b)
	}

	// A webhook receiver's answer is kept (its start) as text with the attempt:
	// NUL and bytes that are not UTF-8 in it must not make the attempt unstorable.
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\x00\xff done"))
	}))
	t.Cleanup(recv.Close)
	ep := createEndpoint(t, s, recv.URL+"/hook", "channel:orders.*")
	publish(t, s, "orders.eu", "order.created")
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds := deliveries(t, s, "/v1/webhooks/"+ep.ID+"/deliveries")
		if len(ds) == 1 && ds[0].Status == errand.DeliverySucceeded && len(ds[0].Attempts) == 1 {
			if got := ds[0].Attempts[0].Response; got != "ok\uFFFD done" && got != "ok done" {
				t.Fatalf("kept answer %q, want it without NUL and as UTF-8", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery to a receiver answering NUL: %+v; want one succeeded attempt", ds)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
