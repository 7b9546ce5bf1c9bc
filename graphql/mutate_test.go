package graphql_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestMutations: the REST resources' writes through GraphQL, answered by the
// same services: submit (input validated by the schema, idempotency, the
// hybrid wait), cancel, retry, delete, publish, webhooks.
func TestMutations(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	const submit = `mutation($op: String!, $in: JSON, $key: String, $wait: Int, $meta: JSON) {
		submitJob(operation: $op, input: $in, idempotencyKey: $key, wait: $wait, metadata: $meta, priority: 5) {
			id status input priority metadata } }`
	r := a.query(submit, map[string]any{"op": "echo", "in": map[string]any{"n": 12345678901234567}, "key": "k1", "wait": 0, "meta": map[string]any{"k": "v"}})
	var j struct {
		ID, Status string
		Input      json.RawMessage
		Priority   int
		Metadata   map[string]string
	}
	json.Unmarshal(r.Data["submitJob"], &j)
	if len(r.Errors) > 0 || j.Status != "QUEUED" || string(j.Input) != `{"n":12345678901234567}` || j.Priority != 5 || j.Metadata["k"] != "v" {
		t.Fatalf("submitJob: %s %+v", r.Data["submitJob"], r.Errors)
	}
	again := a.query(submit, map[string]any{"op": "echo", "in": map[string]any{"n": 12345678901234567}, "key": "k1", "wait": 0, "meta": map[string]any{"k": "v"}})
	if !strings.Contains(string(again.Data["submitJob"]), j.ID) {
		t.Errorf("the same idempotency key and request: %s, want job %s again", again.Data["submitJob"], j.ID)
	}
	if r := a.query(submit, map[string]any{"op": "echo", "in": map[string]any{"n": 2}, "key": "k1", "wait": 0}); r.code() != "idempotency_key_reused" {
		t.Errorf("the same key with another request: %+v", r)
	}
	if r := a.query(submit, map[string]any{"op": "strict", "in": map[string]any{}}); r.code() != "validation_failed" || r.Errors[0].Extensions["errors"] == nil {
		t.Errorf("an input the schema refuses: %+v, want validation_failed with field errors", r)
	}
	if r := a.query(submit, map[string]any{"op": "nope"}); r.code() != "operation_not_found" {
		t.Errorf("an undeclared operation: %+v", r)
	}
	if r := a.query(submit, map[string]any{"op": "echo", "meta": []int{1}}); r.code() != "validation_failed" {
		t.Errorf("metadata that is not an object of strings: %+v", r)
	}
	start := time.Now()
	r = a.query(submit, map[string]any{"op": "echo", "wait": 1})
	if !strings.Contains(string(r.Data["submitJob"]), `"QUEUED"`) || time.Since(start) < 900*time.Millisecond {
		t.Errorf("wait: 1 with no worker: %s after %v, want the queued job after about a second", r.Data["submitJob"], time.Since(start))
	}

	for _, step := range []struct{ query, want string }{
		{`mutation($id: ID!) { cancelJob(id: $id) { status } }`, `"CANCELED"`},
		{`mutation($id: ID!) { retryJob(id: $id) { status attempt } }`, `"QUEUED"`},
		{`mutation($id: ID!) { deleteJob(id: $id) }`, `job_not_terminal`},
		{`mutation($id: ID!) { cancelJob(id: $id) { status } }`, `"CANCELED"`},
		{`mutation($id: ID!) { deleteJob(id: $id) }`, `true`},
		{`query($id: ID!) { job(id: $id) { id } }`, `job_not_found`},
	} {
		r := a.query(step.query, map[string]any{"id": j.ID})
		got, _ := json.Marshal(r)
		if !strings.Contains(string(got), step.want) {
			t.Errorf("%s: %s, want %s", step.query, got, step.want)
		}
	}

	r = a.query(`mutation { publish(channel: "orders.eu", type: "order.created", data: {n: 1}) { id stream type data } }`, nil)
	if !strings.Contains(string(r.Data["publish"]), `"stream":"orders.eu","type":"order.created","data":{"n":1}`) {
		t.Errorf("publish: %s %+v", r.Data["publish"], r.Errors)
	}
	if r := a.query(`mutation { publish(channel: "nope", type: "x") { id } }`, nil); r.code() != "channel_not_found" {
		t.Errorf("publish to an undeclared channel: %+v", r)
	}
	r = a.query(`{ channelEvents(channel: "orders.eu", first: 10) { nodes { type } pageInfo { hasNextPage endCursor } } }`, nil)
	if !strings.Contains(string(r.Data["channelEvents"]), `"order.created"`) {
		t.Errorf("channelEvents: %s %+v", r.Data["channelEvents"], r.Errors)
	}

	r = a.query(`mutation { createWebhook(url: "http://127.0.0.1:9/hook", events: ["job.succeeded"]) { secret webhook { id url events } } }`, nil)
	var created struct {
		Secret  string
		Webhook struct{ ID string }
	}
	json.Unmarshal(r.Data["createWebhook"], &created)
	if !strings.HasPrefix(created.Secret, "whsec_") || created.Webhook.ID == "" {
		t.Fatalf("createWebhook: %s %+v", r.Data["createWebhook"], r.Errors)
	}
	if r := a.query(`mutation { createWebhook(url: "ftp://x") { secret } }`, nil); r.code() != "validation_failed" {
		t.Errorf("a webhook URL that is not http: %+v", r)
	}
	for _, step := range []struct{ query, want string }{
		{`query { webhooks { id } }`, created.Webhook.ID},
		{`mutation($id: ID!) { updateWebhook(id: $id, disabled: true) { disabled disabledReason } }`, `"disabled":true`},
		{`mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`, `whsec_`},
		{`query($id: ID!) { webhook(id: $id) { deliveries { nodes { id } pageInfo { hasNextPage } } } }`, `"hasNextPage":false`},
		{`query { deliveries(first: 5) { edges { cursor } } }`, `"edges":[]`},
		{`mutation($id: ID!) { deleteWebhook(id: $id) }`, `true`},
		{`query($id: ID!) { webhook(id: $id) { id } }`, `not_found`},
	} {
		r := a.query(step.query, map[string]any{"id": created.Webhook.ID})
		got, _ := json.Marshal(r)
		if !strings.Contains(string(got), step.want) {
			t.Errorf("%s: %s, want %s", step.query, got, step.want)
		}
	}
}
