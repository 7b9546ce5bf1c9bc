package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/errandhq/errand"
	"github.com/errandhq/errand/worker"
)

// contractsConfig declares what the documents describe: an operation with
// input and result schemas mounted at its own route, one without schemas, a
// channel pattern with a schema.
const contractsConfig = `
listen: "127.0.0.1:0"
dev: true
http: { public_url: "http://errand.test" }
operations:
  generate-report:
    description: Builds a monthly or weekly report.
    route: /generate-report
    input_schema:
      type: object
      required: [type]
      additionalProperties: false
      properties:
        type: { enum: [monthly, weekly] }
    result_schema:
      type: object
      required: [url, pages]
      properties:
        url: { type: string, pattern: "^/" }
        pages: { type: integer, minimum: 1 }
    retry: { max_attempts: 2, initial: 50ms, max: 100ms }
  echo: {}
channels:
  "orders.*":
    history: 1h
    schema: { type: object, required: [order_id], properties: { order_id: { type: string } } }
`

var documents = map[string]string{"openapi.json": "application/json", "openapi.yaml": "application/yaml",
	"asyncapi.json": "application/json", "asyncapi.yaml": "application/yaml"}

// fetchDoc GETs a document raw (no transparent gzip) with extra headers.
func fetchDoc(t *testing.T, s *server, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestE2EContracts serves the documents (ETag, 304, gzip), checks they are
// what `errand spec` prints for the same configuration, and has the npm
// validators read them: @seriousme/openapi-schema-validator (OpenAPI 3.1, every
// $ref resolved) and @asyncapi/parser (AsyncAPI 3.0) report no errors.
func TestE2EContracts(t *testing.T) {
	t.Parallel()
	s := startServer(t, contractsConfig)
	dir := t.TempDir()
	for name, ct := range documents {
		resp, b := fetchDoc(t, s, "/v1/"+name)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ct || resp.Header.Get("ETag") == "" || len(b) < 1000 {
			t.Fatalf("GET /v1/%s = %d %s (ETag %q), %d bytes", name, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"), len(b))
		}
		if again, _ := fetchDoc(t, s, "/v1/"+name, "If-None-Match", resp.Header.Get("ETag")); again.StatusCode != 304 {
			t.Errorf("GET /v1/%s with its ETag = %d, want 304", name, again.StatusCode)
		}
		zipped, zb := fetchDoc(t, s, "/v1/"+name, "Accept-Encoding", "gzip")
		zr, err := gzip.NewReader(bytes.NewReader(zb))
		if zipped.Header.Get("Content-Encoding") != "gzip" || err != nil {
			t.Fatalf("GET /v1/%s accepting gzip: Content-Encoding %q, %v", name, zipped.Header.Get("Content-Encoding"), err)
		}
		if unzipped, _ := io.ReadAll(zr); !bytes.Equal(unzipped, b) {
			t.Errorf("GET /v1/%s gzipped is not the document", name)
		}
		kind, format, _ := strings.Cut(name, ".")
		cli := exec.Command(binary, "spec", kind, "--format", format, "--config", filepath.Join(s.dir, "errand.yaml"))
		printed, err := cli.Output()
		if err != nil || !bytes.Equal(printed, b) {
			t.Errorf("errand spec %s --format %s (%v) differs from GET /v1/%s", kind, format, err, name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"openapi.json", "openapi.yaml"} {
		out, err := node(t, "validate-openapi.mjs", filepath.Join(dir, name)).CombinedOutput()
		var res struct {
			Valid   bool
			Version string
			Errors  []json.RawMessage
		}
		if json.Unmarshal(lastLine(out), &res); err != nil || !res.Valid || res.Version != "3.1" || len(res.Errors) > 0 {
			t.Errorf("@seriousme/openapi-schema-validator on %s: %v\n%s", name, err, truncate(out))
		}
	}
	for _, name := range []string{"asyncapi.json", "asyncapi.yaml"} {
		out, err := node(t, "validate-asyncapi.mjs", filepath.Join(dir, name)).CombinedOutput()
		var res struct {
			Errors, Warnings               []json.RawMessage
			Parsed                         bool
			Version                        string
			Channels, Operations, Messages int
		}
		json.Unmarshal(lastLine(out), &res)
		// jobEvents, orders.*, ws, webhooks, GraphQL's WebSocket and event
		// stream; a send per stream, the WebSocket's five requests and two
		// pushes, webhooks, and GraphQL's: what each side of graphql-ws sends,
		// what graphql-sse sends.
		if err != nil || !res.Parsed || len(res.Errors) > 0 || res.Version != "3.0.0" || res.Channels != 6 || res.Operations != 13 {
			t.Errorf("@asyncapi/parser on %s: %v (%d channels, %d operations)\n%s", name, err, res.Channels, res.Operations, truncate(out))
		}
		if len(res.Warnings) > 0 {
			t.Logf("@asyncapi/parser warns on %s: %s", name, out)
		}
	}
}

func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

var pathParamRe = regexp.MustCompile(`\{[a-z_]+\}`)

// TestE2EContractRoutes calls every route the served document names on a
// server with authentication: each exists (no 404 "no route", no 405), and
// answers as its security says: a route with credentials required answers
// 401 without them, a public one does not.
func TestE2EContractRoutes(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, strings.Replace(contractsConfig, "dev: true", "", 1), true)
	_, b := fetchDoc(t, s, "/v1/openapi.json")
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	mustJSON(t, b, &doc)
	n := 0
	for path, item := range doc.Paths {
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			var op struct {
				Security *[]map[string][]string
			}
			json.Unmarshal(raw, &op)
			public := op.Security != nil && len(*op.Security) == 0
			url := pathParamRe.ReplaceAllString(path, "x")
			status, h, body := s.do(strings.ToUpper(method), url, "")
			n++
			var p errand.Problem
			json.Unmarshal(body, &p)
			switch {
			case status == 404 && strings.Contains(p.Detail, "no route") || status == 405:
				t.Errorf("%s %s is documented, but the server has no such route: %d %s", method, path, status, body)
			case public && p.Code == errand.EUNAUTHORIZED:
				t.Errorf("%s %s is documented public, but answers 401 without credentials: %s", method, path, body)
			case !public && (status != 401 || h.Get("WWW-Authenticate") == ""):
				t.Errorf("%s %s is documented as needing credentials, but answers %d without them: %.200s", method, path, status, body)
			}
		}
	}
	if n < 50 {
		t.Fatalf("the document names %d routes", n)
	}
}

// TestJSTypedClient generates TypeScript types from the served document
// (openapi-typescript), compiles a client written against them (tsc, strict,
// including a line the types must refuse), and runs it: it submits a job,
// polls it until it finishes and reads its typed result.
func TestJSTypedClient(t *testing.T) {
	t.Parallel()
	s := startServer(t, contractsConfig)
	runWorker(t, s, "generate-report", func(ctx context.Context, j *worker.Job) (any, error) {
		return map[string]any{"url": "/reports/" + j.ID + ".pdf", "pages": 3}, nil
	})
	dir := t.TempDir()
	for _, f := range []string{"client.ts", "tsconfig.json", "package.json"} {
		b, err := os.ReadFile(filepath.Join(jsDir, "typed", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o600)
	}
	bin := func(name string) string {
		p, _ := filepath.Abs(filepath.Join(jsDir, "node_modules", ".bin", name))
		return p
	}
	run := func(name string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return out
	}
	node(t, "validate-openapi.mjs") // checks the npm packages are installed
	run(bin("openapi-typescript"), s.URL+"/v1/openapi.json", "-o", "api.d.ts")
	run(bin("tsc"), "-p", "tsconfig.json")
	out := run("node", filepath.Join("out", "client.js"), s.URL)
	var got struct {
		ID, Status, URL string
		Pages           int
	}
	mustJSON(t, lastLine(out), &got)
	if got.Status != "succeeded" || got.URL != "/reports/"+got.ID+".pdf" || got.Pages != 3 {
		t.Fatalf("the typed client read %+v (%s)", got, out)
	}
}

// TestBrowserDocs opens /docs in Chromium: no console errors, the example
// configuration's operations are there with curl lines naming the page's
// origin, and the page is served with a CSP that allows only its own assets.
func TestBrowserDocs(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile("../../examples/errand.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(strings.Replace(string(example), `listen: "127.0.0.1:8080"`, `listen: "127.0.0.1:0"`, 1),
		`store: "sqlite://./errand-data/errand.db"`, "", 1)
	s := startServer(t, cfg)
	status, h, _ := s.do("GET", "/docs", "")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") ||
		h.Get("Content-Security-Policy") != "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" {
		t.Fatalf("GET /docs = %d %q, CSP %q", status, h.Get("Content-Type"), h.Get("Content-Security-Policy"))
	}
	if _, h, _ := s.do("GET", "/v1/operations", ""); h.Get("Content-Security-Policy") != "default-src 'none'; frame-ancestors 'none'" {
		t.Errorf("the API's CSP changed: %q", h.Get("Content-Security-Policy"))
	}
	b := newBrowser(t)
	b.open(t, s.URL+"/docs")
	b.waitJS(t, `document.body.dataset.ready === "true"`, 15*time.Second)
	b.waitJS(t, `document.querySelector("#op-generate-report h3").textContent === "generate-report"`, 5*time.Second)
	curls, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#op-generate-report pre.curl code")].map(c => c.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	want := "curl -si '" + s.URL + "/generate-report' -H 'Content-Type: application/json' -d '{\"type\":\"monthly\"}'"
	if len(curls) != 3 || curls[1] != want {
		t.Errorf("the operation's curl lines: %q, want the second %q", curls, want)
	}
	buttons, _ := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll("pre.curl button.copy").length`))
	if buttons < 4 {
		t.Errorf("%d copy buttons", buttons)
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("the page reported errors: %q", errs)
	}
	// The curl line works as pasted.
	out, err := exec.Command("sh", "-c", curls[1]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "202 Accepted") {
		t.Errorf("the pasted curl line: %v\n%s", err, out)
	}
}

// TestSpecBridges: `errand spec asyncapi` describes each configured bridge
// (nothing connects to the broker): a server with its protocol, a channel and
// an operation per route — errand sends on publish routes, receives on
// subscribe routes, and a route that submits jobs has the job as its reply —
// and @asyncapi/parser accepts the document.
func TestSpecBridges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "errand.yaml")
	os.WriteFile(cfg, []byte(`listen: "127.0.0.1:0"
operations:
  resize: {}
channels:
  "orders.*": { history: 1h }
  "sensors.all": {}
bridges:
  - name: shop-mqtt
    url: "mqtt://127.0.0.1:1"
    publish:
      - events: ["channel:orders.*"]
        to: "shop/{channel}"
    subscribe:
      - from: "sensors/#"
        to: "channel:sensors.all"
      - from: "errand/jobs/resize"
        to: "jobs:resize"
`), 0o600)
	out, err := exec.Command(binary, "spec", "asyncapi", "--config", cfg).Output()
	if err != nil {
		t.Fatalf("errand spec asyncapi: %v", err)
	}
	var d struct {
		Servers    map[string]struct{ Host, Protocol string }
		Operations map[string]struct {
			Action string
			Reply  json.RawMessage
		}
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	srv := d.Servers["bridge-shop-mqtt"]
	if srv.Protocol != "mqtt" || srv.Host != "127.0.0.1:1" {
		t.Errorf("bridge server = %+v, want mqtt at 127.0.0.1:1", srv)
	}
	var send, receive, replies int
	for key, op := range d.Operations {
		if !strings.HasPrefix(key, "bridge-shop-mqtt-") {
			continue
		}
		switch {
		case op.Action == "send" && op.Reply == nil:
			send++
		case op.Action == "receive" && op.Reply != nil:
			receive, replies = receive+1, replies+1
		case op.Action == "receive":
			receive++
		}
	}
	if send != 1 || receive != 2 || replies != 1 {
		t.Errorf("bridge operations: %d send, %d receive (%d with a reply); want the publish route, the two subscribe routes, one replying", send, receive, replies)
	}
	path := filepath.Join(dir, "asyncapi.json")
	os.WriteFile(path, out, 0o600)
	if res, err := node(t, "validate-asyncapi.mjs", path).CombinedOutput(); err != nil {
		t.Errorf("@asyncapi/parser: %v\n%s", err, res)
	}
}
