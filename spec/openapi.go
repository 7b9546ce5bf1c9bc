package spec

import (
	"cmp"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/httpapi"
)

// The OpenAPI 3.1 objects errand writes (https://spec.openapis.org/oas/v3.1.0).
type (
	openAPI struct {
		OpenAPI    string                `json:"openapi"`
		Info       info                  `json:"info"`
		Servers    []oaServer            `json:"servers"`
		Security   []map[string][]string `json:"security"`
		Tags       []tag                 `json:"tags"`
		Paths      map[string]*pathItem  `json:"paths"`
		Webhooks   map[string]*pathItem  `json:"webhooks,omitempty"`
		Components oaComponents          `json:"components"`
	}
	info struct {
		Title       string   `json:"title"`
		Version     string   `json:"version"`
		Description string   `json:"description,omitempty"`
		License     *license `json:"license,omitempty"`
	}
	license struct {
		Name       string `json:"name"`
		Identifier string `json:"identifier,omitempty"`
	}
	oaServer struct {
		URL         string `json:"url"`
		Description string `json:"description,omitempty"`
	}
	tag struct {
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
	}
	pathItem struct {
		Parameters []param      `json:"parameters,omitempty"`
		Get        *oaOperation `json:"get,omitempty"`
		Put        *oaOperation `json:"put,omitempty"`
		Post       *oaOperation `json:"post,omitempty"`
		Delete     *oaOperation `json:"delete,omitempty"`
		Patch      *oaOperation `json:"patch,omitempty"`
	}
	oaOperation struct {
		OperationID string         `json:"operationId"`
		Tags        []string       `json:"tags,omitempty"`
		Summary     string         `json:"summary,omitempty"`
		Description string         `json:"description,omitempty"`
		Parameters  []param        `json:"parameters,omitempty"`
		RequestBody *requestBody   `json:"requestBody,omitempty"`
		Responses   map[string]any `json:"responses"`
		// Security is the route's own requirement: nil takes the document's,
		// an empty list is public.
		Security *[]map[string][]string `json:"security,omitempty"`
	}
	param struct {
		Name        string `json:"name"`
		In          string `json:"in"`
		Description string `json:"description,omitempty"`
		Required    bool   `json:"required,omitempty"`
		Schema      any    `json:"schema"`
		Example     any    `json:"example,omitempty"`
	}
	requestBody struct {
		Description string               `json:"description,omitempty"`
		Required    bool                 `json:"required,omitempty"`
		Content     map[string]mediaType `json:"content"`
	}
	mediaType struct {
		Schema   any            `json:"schema,omitempty"`
		Example  any            `json:"example,omitempty"`
		Examples map[string]any `json:"examples,omitempty"`
	}
	example struct {
		Summary string `json:"summary,omitempty"`
		Value   any    `json:"value"`
	}
	response struct {
		Description string               `json:"description"`
		Headers     map[string]any       `json:"headers,omitempty"`
		Content     map[string]mediaType `json:"content,omitempty"`
	}
	oaComponents struct {
		Schemas         map[string]any `json:"schemas"`
		Responses       map[string]any `json:"responses"`
		Examples        map[string]any `json:"examples"`
		Headers         map[string]any `json:"headers"`
		SecuritySchemes map[string]any `json:"securitySchemes"`
	}
)

// openAPIDoc builds the OpenAPI document for in, over the model m.
func openAPIDoc(in *Input, m *model) (*openAPI, error) {
	d := &openAPI{OpenAPI: "3.1.0", Info: m.info(), Servers: []oaServer{{URL: m.base, Description: "errand"}},
		Security: m.security(Bearer), Tags: m.tags(), Paths: map[string]*pathItem{}, Webhooks: webhooks(m),
		Components: oaComponents{Schemas: m.schemas, Responses: map[string]any{}, Examples: m.problemExamples(), Headers: headers, SecuritySchemes: m.oaSecurity()}}
	ids := map[string]string{}
	for _, pattern := range in.Routes {
		rt, ok := m.route(pattern)
		if !ok {
			return nil, fmt.Errorf("spec: route %q is not documented: document it in spec/routes.go (or in the Extension that registers it)", pattern)
		}
		if prev, dup := ids[rt.ID]; dup {
			return nil, fmt.Errorf("spec: routes %q and %q have the same operationId %q", prev, pattern, rt.ID)
		}
		ids[rt.ID] = pattern
		method, path, _ := strings.Cut(pattern, " ")
		item := d.Paths[path]
		if item == nil {
			item = &pathItem{Parameters: pathParams(path)}
			d.Paths[path] = item
		}
		item.set(method, m.operation(method, path, rt, d.Components.Responses))
	}
	return d, nil
}

func (p *pathItem) set(method string, op *oaOperation) {
	switch method {
	case http.MethodGet:
		p.Get = op
	case http.MethodPut:
		p.Put = op
	case http.MethodPost:
		p.Post = op
	case http.MethodDelete:
		p.Delete = op
	case http.MethodPatch:
		p.Patch = op
	}
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)(\.\.\.)?\}`)

// pathParams are the parameters a path pattern names.
func pathParams(path string) []param {
	var out []param
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		out = append(out, param{Name: m[1], In: "path", Required: true, Description: paramDesc(path, m[1]), Schema: schema{"type": "string"}})
	}
	return out
}

func paramDesc(path, name string) string {
	switch {
	case name == "lease_id":
		return "The lease id (lease_<job id>.<token>): a bearer capability, keep it out of logs."
	case name == "channel":
		return "A channel name that a declared channel or pattern matches (orders.created)."
	case name == "name" && strings.HasPrefix(path, "/v1/operations"):
		return "The operation's name."
	case name == "name":
		return "The artifact's name."
	case strings.HasPrefix(path, "/v1/jobs"):
		return "The job's id (job_…)."
	case strings.HasPrefix(path, "/v1/webhooks"):
		return "The endpoint's id."
	case strings.HasPrefix(path, "/v1/deliveries"):
		return "The delivery's id (its webhook-id)."
	case strings.HasPrefix(path, "/v1/keys"):
		return "The key's id (key_…)."
	}
	return ""
}

// operation writes one route.
func (m *model) operation(method, path string, rt Route, shared map[string]any) *oaOperation {
	op := &oaOperation{OperationID: rt.ID, Tags: []string{rt.Tag}, Summary: rt.Summary, Description: rt.Description,
		Responses: map[string]any{}}
	if rt.Access != Bearer {
		sec := m.security(rt.Access)
		if sec == nil {
			sec = []map[string][]string{}
		}
		op.Security = &sec
	}
	for _, q := range rt.Query {
		op.Parameters = append(op.Parameters, param{Name: q.Name, In: "query", Description: q.Description, Required: q.Required, Schema: q.Schema, Example: q.Example})
	}
	for _, h := range rt.Headers {
		op.Parameters = append(op.Parameters, param{Name: h.Name, In: "header", Description: h.Description, Required: h.Required, Schema: h.Schema, Example: h.Example})
	}
	if b := rt.Body; b != nil {
		op.RequestBody = &requestBody{Description: b.Description, Required: b.Required,
			Content: map[string]mediaType{cmp.Or(b.ContentType, "application/json"): {Schema: b.Schema, Example: b.Example}}}
	}
	for _, a := range rt.Answers {
		op.Responses[strconv.Itoa(a.Status)] = answer(a)
	}
	for status, p := range m.problems(method, rt) {
		if op.Responses[status] != nil {
			continue
		}
		op.Responses[status] = p.r
		if len(p.codes) == 1 { // one code: a response shared by every route that gives it
			shared[p.codes[0]] = p.r
			op.Responses[status] = schema{"$ref": "#/components/responses/" + p.codes[0]}
		}
	}
	return op
}

func answer(a Answer) *response {
	r := &response{Description: a.Description}
	for _, h := range a.Headers {
		if r.Headers == nil {
			r.Headers = map[string]any{}
		}
		r.Headers[h] = schema{"$ref": "#/components/headers/" + h}
	}
	if a.Schema != nil {
		r.Content = map[string]mediaType{cmp.Or(a.ContentType, "application/json"): {Schema: a.Schema}}
	}
	for _, alt := range a.Alt {
		r.Content[alt.ContentType] = mediaType{Schema: alt.Schema}
	}
	return r
}

// problems are the problem answers a route may give, by status: the codes
// of its own and those of every route of its kind, each with an example.
func (m *model) problems(method string, rt Route) map[string]problemAnswer {
	codes := slices.Clone(rt.Errors)
	if rt.Access != Public {
		codes = append(codes, errand.EUNAUTHORIZED, errand.EFORBIDDEN, errand.EUNAVAILABLE, errand.EINTERNAL)
		if c := m.in.Config; c != nil && c.HTTP.Limit() != nil { // http.rate_limit counts every authenticated request
			codes = append(codes, errand.ERATELIMITED)
		}
	}
	if rt.Body != nil && cmp.Or(rt.Body.ContentType, "application/json") == "application/json" {
		codes = append(codes, errand.EMALFORMED, errand.EVALIDATION, errand.ETOOLARGE)
	}
	if method != http.MethodGet && rt.Access != Public {
		codes = append(codes, errand.ESTORAGEFULL)
	}
	byStatus := map[int][]string{}
	for _, c := range codes {
		k, ok := m.kinds[c]
		if ok && !slices.Contains(byStatus[k.Status], c) {
			byStatus[k.Status] = append(byStatus[k.Status], c)
		}
	}
	out := map[string]problemAnswer{}
	for status, cs := range byStatus {
		slices.Sort(cs)
		r := &response{Description: http.StatusText(status) + ": " + strings.Join(cs, ", ") + ".",
			Content: map[string]mediaType{"application/problem+json": {
				Schema:   schema{"allOf": []any{ref("Problem"), schema{"properties": schema{"code": schema{"enum": cs}}}}},
				Examples: map[string]any{}}}}
		for _, c := range cs {
			r.Content["application/problem+json"].Examples[c] = schema{"$ref": "#/components/examples/" + c}
		}
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || status == http.StatusInsufficientStorage {
			r.Headers = map[string]any{"Retry-After": schema{"$ref": "#/components/headers/Retry-After"}}
		}
		if status == http.StatusTooManyRequests {
			r.Headers["RateLimit"] = schema{"$ref": "#/components/headers/RateLimit"}
			r.Headers["RateLimit-Policy"] = schema{"$ref": "#/components/headers/RateLimit-Policy"}
		}
		if status == http.StatusUnauthorized {
			r.Headers = map[string]any{"WWW-Authenticate": schema{"$ref": "#/components/headers/WWW-Authenticate"}}
		}
		out[strconv.Itoa(status)] = problemAnswer{r, cs}
	}
	return out
}

// problemAnswer is a problem response and the codes it may carry.
type problemAnswer struct {
	r     *response
	codes []string
}

// problemExamples are an example problem per code.
func (m *model) problemExamples() map[string]any {
	out := map[string]any{}
	for c, k := range m.kinds {
		out[c] = example{Summary: k.Title, Value: errand.Problem{Type: "/docs/problems#" + c, Title: k.Title, Status: k.Status,
			Code: c, Detail: problemDetail(c)}}
	}
	return out
}

// problemDetail is an example detail for a code.
func problemDetail(code string) string {
	return map[string]string{
		errand.EVALIDATION:    "input does not match the operation's schema",
		errand.EUNAUTHORIZED:  "authentication is required",
		errand.EQUEUEFULL:     "operation \"generate-report\" has 10000 jobs queued, its max_queued: retry in 4s",
		errand.ERATELIMITED:   "rate limit generate-report (5/s, burst 5) reached: retry in 200ms",
		errand.ERESULTINVALID: "the result does not match the operation's result_schema; the attempt failed",
		errand.ELEASEEXPIRED:  "the lease ended, was completed or was taken over",
	}[code]
}

// problemCodes lists every error code (httpapi's map of codes to statuses).
func problemCodes() []string {
	var out []string
	for c := range httpapi.Problems() {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// tags are errand's own tags, then the extensions'.
func (m *model) tags() []tag {
	out := slices.Clone(tags)
	for _, x := range m.in.Extensions {
		for _, t := range x.Tags {
			out = append(out, tag{Name: t.Name, Description: t.Description})
		}
	}
	return out
}

var tags = []tag{
	{Name: "Jobs", Description: "Submit operations, follow and manage their jobs."},
	{Name: "Events", Description: "Event streams: Server-Sent Events and the WebSocket API."},
	{Name: "Channels", Description: "Publish/subscribe channels with history and replay."},
	{Name: "Operations", Description: "Each operation mounted at its own route."},
	{Name: "Workers", Description: "The pull-worker protocol: lease, heartbeat, complete, fail."},
	{Name: "Webhooks", Description: "Endpoints that receive signed deliveries (Standard Webhooks)."},
	{Name: "Auth", Description: "Keys, tokens, tickets, the audit log."},
	{Name: "Service", Description: "Health and the API's own description."},
}

var headers = map[string]any{
	"Location":            hdr("The job's URL (/v1/jobs/{id}).", schema{"type": "string"}),
	"Retry-After":         hdr("Seconds to wait before polling (or trying) again.", schema{"type": "integer", "minimum": 0}),
	"Idempotent-Replayed": hdr("true when the answer is the job an earlier submit with the same Idempotency-Key made.", schema{"type": "string", "enum": []string{"true"}}),
	"Preference-Applied":  hdr("The Prefer preference honoured: respond-async, or wait=N.", schema{"type": "string"}),
	"WWW-Authenticate":    hdr("Bearer realm=\"errand\".", schema{"type": "string"}),
	"RateLimit": hdr("The state of each rate limit that applied (draft-ietf-httpapi-ratelimit-headers-10): a list of the policies' names, each with r (requests remaining now) and t (seconds until the quota is whole again), e.g. `\"generate-report\";r=4;t=1`.",
		schema{"type": "string"}),
	"RateLimit-Policy": hdr("The rate limits that applied (draft-ietf-httpapi-ratelimit-headers-10): `\"http\"` for http.rate_limit, an operation's name for its rate_limit, each with q (the quota: its burst) and w (the seconds a spent quota takes to come back), e.g. `\"generate-report\";q=5;w=1`.",
		schema{"type": "string"}),
	"Errand-Duplicate-Of": hdr("The id of the job answered instead of a new one: the submit's unique key (the operation's unique) is held by that job.", schema{"type": "string"}),
}

func hdr(desc string, s schema) schema { return schema{"description": desc, "schema": s} }
