package graphql_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/errandhq/errand/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestSDL: the schema as served is the golden testdata/schema.graphql (what
// clients and the contracts see; -update rewrites it after a deliberate
// change), and SDL() is the schema the served one was generated from (go
// generate ./graphql has run).
func TestSDL(t *testing.T) {
	got := graphql.Canonical(graphql.Served())
	src, err := gqlparser.LoadSchema(&ast.Source{Name: "sdl", Input: graphql.SDL()})
	if err != nil {
		t.Fatalf("SDL() does not parse: %v", err)
	}
	if graphql.Canonical(src) != got {
		t.Errorf("SDL() is not the schema served: run go generate ./graphql")
	}
	const golden = "testdata/schema.graphql"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the SDL differs from %s (run go test ./graphql -run TestSDL -update after a deliberate change):\n%s", golden, got)
	}
	for _, name := range []string{"type Query", "jobEvents(id: ID!, after: String): Event!", "scalar JSON", "scalar Time", "enum JobStatus", "type JobConnection"} {
		if !strings.Contains(got, name) {
			t.Errorf("the SDL has no %q", name)
		}
	}
}

// TestHTTP: GraphQL over HTTP as its specification says — media types by
// Accept, the status of request errors by media type, GET for queries only.
func TestHTTP(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	const gr, js = "application/graphql-response+json", "application/json"
	big := `{"query":"{ me { id } ` + strings.Repeat(" ", 40<<10) + `"}`
	for _, c := range []struct {
		name, method, query, body, accept, contentType string
		status                                         int
		media, code                                    string
	}{
		{"query, graphql-response", "POST", "", `{"query":"{ me { id } }"}`, gr, js, 200, gr, ""},
		{"query, no Accept", "POST", "", `{"query":"{ me { id } }"}`, "", js, 200, js, ""},
		{"both accepted", "POST", "", `{"query":"{ me { id } }"}`, js + ", " + gr, js, 200, gr, ""},
		{"validation error, graphql-response", "POST", "", `{"query":"{ nope }"}`, gr, js, 400, gr, "invalid_request"},
		{"validation error, json", "POST", "", `{"query":"{ nope }"}`, js, js, 200, js, "invalid_request"},
		{"syntax error, graphql-response", "POST", "", `{"query":"{ me {"}`, gr, js, 400, gr, "invalid_request"},
		{"bad variables, graphql-response", "POST", "", `{"query":"query($n: Int) { jobs(first: $n) { nodes { id } } }","variables":{"n":"x"}}`, gr, js, 400, gr, "invalid_request"},
		{"field error", "POST", "", `{"query":"{ job(id: \"job_nope\") { id } }"}`, gr, js, 200, gr, "job_not_found"},
		{"malformed JSON", "POST", "", `{"query":`, gr, js, 400, gr, "malformed_json"},
		{"no query", "POST", "", `{}`, gr, js, 400, gr, "invalid_request"},
		{"not JSON", "POST", "", `{ me { id } }`, gr, "application/graphql", 415, gr, "unsupported_media_type"},
		{"not acceptable", "POST", "", `{"query":"{ me { id } }"}`, "text/html", js, 406, js, "invalid_request"},
		{"a subscription over plain HTTP", "POST", "", `{"query":"subscription { channel(channel: \"orders.eu\") { id } }"}`, gr, js, 400, gr, "invalid_request"},
		{"document too large", "POST", "", big, gr, js, 413, gr, "body_too_large"},
		{"GET query", "GET", "?query=" + url.QueryEscape("{ me { id } }"), "", gr, "", 200, gr, ""},
		{"GET with variables", "GET", "?query=" + url.QueryEscape("query($f: Int) { jobs(first: $f) { nodes { id } } }") + "&variables=" + url.QueryEscape(`{"f":2}`), "", gr, "", 200, gr, ""},
		{"GET with variables nested 100 deep", "GET", "?query=" + url.QueryEscape("{ me { id } }") + "&variables=" + url.QueryEscape(`{"a":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`), "", gr, "", 400, gr, "malformed_json"},
		{"GET mutation", "GET", "?query=" + url.QueryEscape(`mutation { deleteJob(id: "x") }`), "", gr, "", 405, gr, "method_not_allowed"},
	} {
		status, media, body := a.send(c.method, c.query, c.body, c.accept, "Content-Type", c.contentType)
		var r result
		_ = json.Unmarshal(body, &r)
		if status != c.status || !strings.HasPrefix(media, c.media) || r.code() != c.code {
			t.Errorf("%s: %d %s %s, want %d %s code %q", c.name, status, media, body, c.status, c.media, c.code)
		}
		if c.status >= 400 && r.Data != nil {
			t.Errorf("%s: a request error has data: %s", c.name, body)
		}
	}
}

// TestLimits: hostile documents are refused before validation runs (a
// thousand aliases, fragments that multiply), with the limit named.
func TestLimits(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	frags := "query { ...F0 }\nfragment F0 on Query { me { id } }\n"
	for i := 1; i <= 30; i++ {
		frags += fmt.Sprintf("fragment F%d on Query { ...F%d ...F%d }\n", i, i-1, i-1)
	}
	frags = strings.Replace(frags, "query { ...F0 }", "query { ...F30 }", 1)
	nest := func(n int) string { // job → events → nodes → job … n levels
		q := "id"
		for range (n - 2) / 3 {
			q = "events(first: 2) { nodes { job { " + q + " } } }"
		}
		return "{ job(id: \"x\") { " + q + " } }"
	}
	aliases := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "a%d: me { id } ", i)
		}
		return "{ " + b.String() + "}"
	}
	for _, c := range []struct {
		name, query, limit string
	}{
		{"20 levels", nest(20), "max_depth"},
		{"1000 aliases", aliases(1000), "max_aliases"},
		{"31 aliases", aliases(31), "max_aliases"},
		{"fragments doubling 30 times", frags, "max_complexity"},
		{"pages of pages", `{ jobs(first: 1000) { nodes { events(first: 1000) { nodes { id } } } } }`, "max_complexity"},
	} {
		r := a.query(c.query, nil)
		if r.code() != "invalid_request" || r.Errors[0].Extensions["limit"] != c.limit {
			t.Errorf("%s: %+v, want invalid_request with limit %s", c.name, r, c.limit)
		}
	}
	if r := a.query(aliases(30), nil); len(r.Errors) > 0 {
		t.Errorf("30 aliases: %+v, want an answer", r)
	}
	if r := a.query(nest(11), nil); r.code() != "job_not_found" {
		t.Errorf("11 levels: %+v, want the query to run (job_not_found)", r)
	}
	if r := a.query(`{ __schema { types { name } } }`, nil); len(r.Errors) > 0 {
		t.Errorf("introspection: %+v, want it on by default", r)
	}
	off := newAPI(t, &graphql.Config{NoIntrospection: true})
	if r := off.query(`{ __schema { types { name } } }`, nil); r.code() != "forbidden" || !strings.Contains(r.Errors[0].Message, "graphql.introspection") {
		t.Errorf("introspection turned off: %+v, want forbidden naming graphql.introspection", r)
	}
	if r := off.query(`{ me { __typename id } }`, nil); len(r.Errors) > 0 {
		t.Errorf("__typename with introspection off: %+v, want an answer", r)
	}
}
