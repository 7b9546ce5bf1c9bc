package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/worker"
)

// jsDir holds the npm clients the tests drive (./test.sh installs them).
const jsDir = "../../e2e/js"

func node(t *testing.T, script string, args ...string) *exec.Cmd {
	t.Helper()
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "eventsource")); err != nil {
		t.Fatalf("the npm clients are not installed (run ./test.sh, or npm ci in e2e/js): %v", err)
	}
	return exec.Command("node", append([]string{filepath.Join(jsDir, script)}, args...)...)
}

// lines streams a process's stdout lines.
func lines(t *testing.T, cmd *exec.Cmd) <-chan string {
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c <- sc.Text()
		}
		close(c)
	}()
	return c
}

func waitLine(t *testing.T, c <-chan string, contains string, seen *[]string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-c:
			if !ok {
				t.Fatalf("the client ended before %q; saw %v", contains, *seen)
			}
			*seen = append(*seen, l)
			if strings.Contains(l, contains) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q from the client in 20s; saw %v", contains, *seen)
		}
	}
}

// TestJSEventSource follows a job with the npm eventsource package while errand
// is killed and restarted mid-stream: every event arrives once, in order.
func TestJSEventSource(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig)
	s.keepPort()
	j := submit(t, s, "echo", nil)
	var leased struct{ Leases []errand.Lease }
	out := lines(t, node(t, "eventsource-job.mjs", s.URL+"/v1/jobs/"+j.ID+"/events"))
	var seen []string
	waitLine(t, out, `"type":"job.created"`, &seen)
	_, _, b := s.do("POST", "/v1/leases", `{"operations":["echo"],"lease_seconds":120}`)
	mustJSON(t, b, &leased)
	lease := leased.Leases[0].ID
	s.do("POST", "/v1/leases/"+lease+"/heartbeat", `{"progress":{"percent":10,"message":"before the restart"}}`)
	waitLine(t, out, `"type":"job.progress"`, &seen)

	s.kill()
	s.start() // same port: EventSource reconnects with Last-Event-ID
	for i := 2; i <= 4; i++ {
		s.do("POST", "/v1/leases/"+lease+"/heartbeat", fmt.Sprintf(`{"progress":{"percent":%d0,"message":"after the restart"}}`, i))
	}
	s.do("POST", "/v1/leases/"+lease+"/complete", `{"result":{"ok":true}}`)
	waitLine(t, out, `"done":true`, &seen)

	evs, _ := s.client().Events(ctxTimeout(t, 5*time.Second), j.ID, "")
	var want, got []string
	for _, e := range evs.Events {
		want = append(want, e.ID+" "+e.Type)
	}
	errs := 0
	for _, l := range seen {
		var m struct {
			ID, Type, EventID string `json:",omitempty"`
			Errors            int
			Done              bool
		}
		json.Unmarshal([]byte(l), &m)
		if m.Type != "" {
			got = append(got, m.ID+" "+m.Type)
		}
		if m.Done {
			errs = m.Errors
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || len(want) != 7 {
		t.Fatalf("eventsource saw %v\nthe log has %v\n(want all 7, once each, in order)", got, want)
	}
	if errs == 0 {
		t.Fatalf("eventsource never saw the connection drop: the restart was not mid-stream")
	}
}

// TestJSWebSocket drives /v1/ws with the npm ws package.
func TestJSWebSocket(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig+"channels:\n  \"orders.*\": { history: 1h }\n")
	runWorker(t, s, "echo", func(ctx context.Context, j *worker.Job) (any, error) { return json.RawMessage(j.Input), nil })
	cmd := node(t, "ws-client.mjs", "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws", "orders.created", "echo")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("ws client: %v\n%s", err, b)
	}
	var got struct {
		Protocol string
		Acks     map[string]json.RawMessage
		Events   []struct {
			Sub, Type, ID string
			Data          json.RawMessage
		}
		Errors []struct {
			ID    string
			Error errand.Problem
		}
	}
	mustJSON(t, b, &got)
	if got.Protocol != "errand.v1" || string(got.Acks["p0"]) != `"pong"` {
		t.Fatalf("protocol %q, ping answer %s", got.Protocol, got.Acks["p0"])
	}
	var channel, jobTypes []string
	for _, e := range got.Events {
		switch e.Sub {
		case "s1":
			channel = append(channel, e.Type+" "+string(e.Data))
		case "s2":
			jobTypes = append(jobTypes, e.Type)
		}
	}
	if strings.Join(channel, ",") != `order.created {"n":1},order.created {"n":2},order.created {"n":3}` {
		t.Fatalf("channel events over ws: %v", channel)
	}
	if strings.Join(jobTypes, " ") != "job.created job.started job.succeeded" {
		t.Fatalf("job events over ws: %v", jobTypes)
	}
	for _, id := range []string{"p1", "p2", "p3", "r1", "s1", "s2"} {
		if got.Acks[id] == nil {
			t.Fatalf("no ack for %s: %s", id, b)
		}
	}
	if len(got.Errors) != 1 || got.Errors[0].ID != "x1" || got.Errors[0].Error.Code != errand.EINVALID {
		t.Fatalf("unknown op: errors %+v, want one invalid_request for x1", got.Errors)
	}
}
