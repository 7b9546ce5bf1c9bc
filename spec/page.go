package spec

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/errandhq/errand"
)

//go:embed page.html
var pageHTML string

//go:embed assets
var assetFS embed.FS

var pageTemplate = template.Must(template.New("docs").Parse(pageHTML))

// assets are the page's files, served under /docs/assets/.
func assets() map[string]*file {
	out := map[string]*file{}
	entries, _ := assetFS.ReadDir("assets")
	for _, e := range entries {
		b, _ := assetFS.ReadFile("assets/" + e.Name())
		ct := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
			".svg": "image/svg+xml"}[path.Ext(e.Name())]
		out[e.Name()] = newFile(b, ct, pageCSP)
	}
	return out
}

// pageData is what the /docs template shows.
type pageData struct {
	Version, Base string
	Dev           bool
	Auth          string // the Authorization header of the curl lines, or ""
	OAuth         bool
	Operations    []pageOperation
	Groups        []pageGroup
	Channels      []pageChannel
	JobEvents     []pageItem
	WebSocket     []pageItem
	Webhooks      []pageItem
	Roles         []string
	Sections      []Section // the extensions'
}

type pageOperation struct {
	Name, Description, Route, Handler string
	Timeout                           time.Duration
	MaxAttempts                       int
	Wait                              time.Duration
	Input, Result                     string // pretty JSON Schemas, "" when none
	Curl, CurlRoute, CurlWait         string
}

type pageGroup struct {
	Tag    string
	Routes []pageRoute
}

type pageRoute struct {
	Method, Path, Summary, Access string
}

type pageChannel struct {
	Pattern, Description, History, Schema, Subscribe, Publish string
}

type pageItem struct{ Name, Summary string }

// renderPage writes /docs for the model and its OpenAPI document.
func renderPage(m *model, oa *openAPI) ([]byte, error) {
	d := pageData{Version: m.version, Base: m.base, Dev: m.in.Config.Dev, OAuth: m.hasOAuth, Roles: m.roles}
	if !d.Dev {
		d.Auth = ` -H "Authorization: Bearer $ERRAND_TOKEN"`
	}
	for _, op := range m.ops {
		d.Operations = append(d.Operations, m.pageOperation(op, d.Auth))
	}
	d.Groups = pageGroups(oa)
	for _, x := range m.in.Extensions {
		d.Sections = append(d.Sections, x.Sections...)
	}
	for _, ch := range m.channels {
		d.Channels = append(d.Channels, pageChannelOf(ch, m.base, d.Auth))
	}
	for _, e := range jobEventTypes {
		d.JobEvents = append(d.JobEvents, pageItem{e.typ, e.summary})
	}
	for _, w := range wsMessages {
		d.WebSocket = append(d.WebSocket, pageItem{w.name, w.summary})
	}
	for _, w := range webhookTypes {
		d.Webhooks = append(d.Webhooks, pageItem{w.typ, w.summary})
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("spec: docs page: %w", err)
	}
	return b.Bytes(), nil
}

func (m *model) pageOperation(op errand.Operation, auth string) pageOperation {
	input, _ := json.Marshal(m.examples[op.Name])
	body, _ := json.Marshal(struct {
		Operation string          `json:"operation"`
		Input     json.RawMessage `json:"input"`
	}{op.Name, input})
	p := pageOperation{Name: op.Name, Description: op.Description, Route: op.Route, Handler: op.Handler.Type,
		Timeout: op.Timeout, MaxAttempts: op.Retry.MaxAttempts, Wait: op.Wait,
		Input: pretty(op.InputSchema), Result: pretty(op.ResultSchema),
		Curl: curl(m.base+"/v1/jobs", auth, "", body)}
	if op.Route != "" {
		p.CurlRoute = curl(m.base+op.Route, auth, "", input)
		p.CurlWait = curl(m.base+op.Route, auth, "Prefer: wait=10", input)
	} else {
		p.CurlWait = curl(m.base+"/v1/jobs", auth, "Prefer: wait=10", body)
	}
	return p
}

// curl is a ready-to-paste command that POSTs body as JSON.
func curl(url, auth, header string, body []byte) string {
	var b strings.Builder
	b.WriteString("curl -si " + shellQuote(url) + auth)
	if header != "" {
		b.WriteString(" -H " + shellQuote(header))
	}
	b.WriteString(" -H 'Content-Type: application/json' -d " + shellQuote(string(body)))
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func pretty(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

func pageChannelOf(ch errand.Channel, base, auth string) pageChannel {
	name := strings.NewReplacer("*", "example", ">", "example.more").Replace(ch.Pattern)
	url := base + "/v1/channels/" + name + "/events"
	return pageChannel{Pattern: ch.Pattern, Description: ch.Description, History: ch.History.String(), Schema: pretty(ch.Schema),
		Subscribe: "curl -N " + shellQuote(url+"?after=0") + auth + " -H 'Accept: text/event-stream'",
		Publish:   curl(url, auth, "", []byte(`{"type":"`+name+`","data":{}}`))}
}

var methodOrder = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// pageGroups lists the document's routes by tag, in the tags' order.
func pageGroups(oa *openAPI) []pageGroup {
	byTag := map[string][]pageRoute{}
	paths := make([]string, 0, len(oa.Paths))
	for p := range oa.Paths {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, path := range paths {
		item := oa.Paths[path]
		for i, op := range []*oaOperation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op == nil {
				continue
			}
			access := "bearer"
			if op.Security != nil && len(*op.Security) == 0 {
				access = "public"
			} else if op.Security != nil && slices.ContainsFunc(*op.Security, func(s map[string][]string) bool { _, ok := s["ticket"]; return ok }) {
				access = "bearer or ticket"
			}
			byTag[op.Tags[0]] = append(byTag[op.Tags[0]], pageRoute{methodOrder[i], path, op.Summary, access})
		}
	}
	var out []pageGroup
	for _, t := range oa.Tags {
		if rs := byTag[t.Name]; len(rs) > 0 {
			out = append(out, pageGroup{t.Name, rs})
		}
	}
	return out
}
