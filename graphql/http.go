package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/errandhq/errand"
	"github.com/errandhq/errand/httpapi"
	"github.com/errandhq/errand/jsonguard"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// The media types of GraphQL over HTTP answers.
const (
	mediaGraphQL = "application/graphql-response+json"
	mediaJSON    = "application/json"
)

// serveHTTP answers GraphQL over HTTP (the GraphQL-over-HTTP specification):
// POST with a JSON body, or GET with the parameters in the URL (queries only).
// A client that accepts application/graphql-response+json gets it, with a
// 4xx status when the request failed before it ran; with application/json
// every well-formed request is answered 200.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request, a httpapi.Access) {
	media, ok := responseMedia(r)
	if !ok {
		s.writeHTTPError(w, r, errand.Errorf(errand.EINVALID, "answers are %s or %s: accept one of them", mediaGraphQL, mediaJSON), false, http.StatusNotAcceptable)
		return
	}
	gr := media == mediaGraphQL
	p, err := a.Authenticate(r, false)
	if err != nil {
		if errand.ErrorCode(err) == errand.EUNAUTHORIZED {
			w.Header().Set("WWW-Authenticate", `Bearer realm="errand"`)
		}
		s.writeHTTPError(w, r, err, gr, 0)
		return
	}
	var params graphql.RawParams
	if err := readParams(r, &params); err != nil {
		s.writeHTTPError(w, r, err, gr, 0)
		return
	}
	c := &caller{p: p, r: r, a: a}
	op, resp := s.prepare(r.Context(), c, &params)
	if resp == nil {
		resp = refuseOnHTTP(w, r, op)
	}
	if resp != nil {
		status := http.StatusOK
		if gr {
			status = requestErrorStatus(resp.Errors)
		}
		writeResult(w, status, payload(resp), media)
		return
	}
	var out oneResult
	if err := s.run(r.Context(), c, op, &out); err != nil || out.b == nil {
		s.writeHTTPError(w, r, cmpErr(err), gr, 0)
		return
	}
	writeResult(w, http.StatusOK, out.b, media)
}

func cmpErr(err error) error {
	if err == nil {
		return errors.New("the operation gave no result")
	}
	return err
}

// refuseOnHTTP is the request error of an operation plain HTTP does not run:
// a subscription (it needs a stream), or a mutation over GET (405).
func refuseOnHTTP(w http.ResponseWriter, r *http.Request, op *graphql.OperationContext) *graphql.Response {
	var msg, code string
	switch {
	case op.Operation.Operation == ast.Subscription:
		msg, code = "subscriptions need a stream: a WebSocket (graphql-transport-ws) or Accept: text/event-stream (graphql-sse)", errand.EINVALID
	case op.Operation.Operation == ast.Mutation && r.Method == http.MethodGet:
		w.Header().Set("Allow", "POST")
		msg, code = "mutations are sent with POST", errand.EMETHODNOTALLOWED
	default:
		return nil
	}
	return &graphql.Response{Errors: gqlerror.List{{Message: msg, Extensions: map[string]any{"code": code}}}}
}

// prepare parses, validates and checks an operation as c; a request error
// comes back as the response to send (the operation does not run).
func (s *Server) prepare(ctx context.Context, c *caller, params *graphql.RawParams) (*graphql.OperationContext, *graphql.Response) {
	ctx = graphql.StartOperationTrace(withCaller(ctx, c))
	op, errs := s.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		return nil, s.exec.DispatchError(graphql.WithOperationContext(ctx, op), errs)
	}
	return op, nil
}

// responseMedia picks the answer's media type from Accept: graphql-response
// when accepted, else JSON (also without Accept); false when neither is.
func responseMedia(r *http.Request) (string, bool) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return mediaJSON, true
	}
	json := false
	for _, part := range strings.Split(accept, ",") {
		t, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		switch {
		case err != nil:
		case t == mediaGraphQL:
			return mediaGraphQL, true
		case t == mediaJSON, t == "*/*", t == "application/*":
			json = true
		}
	}
	return mediaJSON, json
}

// readParams reads a request's GraphQL parameters: a POSTed JSON body, or a
// GET's URL query.
func readParams(r *http.Request, p *graphql.RawParams) error {
	switch r.Method {
	case http.MethodGet:
		return queryParams(r.URL.Query(), p)
	case http.MethodPost:
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != mediaJSON {
			return errand.Errorf(errand.EMEDIATYPE, "send the request as application/json")
		}
		b, err := io.ReadAll(r.Body)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errand.Errorf(errand.ETOOLARGE, "the body is larger than %d bytes", tooBig.Limit)
		}
		if err != nil {
			return errand.Errorf(errand.EINVALID, "reading the body: %v", err)
		}
		return decodeParams(b, p)
	}
	return errand.Errorf(errand.EMETHODNOTALLOWED, "use POST, or GET for queries")
}

// queryParams reads ?query=&operationName=&variables=&extensions= (the last
// two JSON).
func queryParams(q url.Values, p *graphql.RawParams) error {
	p.Query, p.OperationName = q.Get("query"), q.Get("operationName")
	for name, into := range map[string]*map[string]any{"variables": &p.Variables, "extensions": &p.Extensions} {
		if v := q.Get(name); v != "" {
			if err := jsonguard.Check([]byte(v), nil); err != nil {
				return err
			}
			if err := decodeJSON([]byte(v), into); err != nil {
				return errand.Errorf(errand.EINVALID, "%s must be a JSON object", name)
			}
		}
	}
	if p.Query == "" {
		return errand.Errorf(errand.EINVALID, "the request has no query")
	}
	return nil
}

// decodeParams reads {query, operationName, variables, extensions}, strictly
// checked (jsonguard) and with numbers kept as written.
func decodeParams(b []byte, p *graphql.RawParams) error {
	if err := jsonguard.Check(b, nil); err != nil {
		return err
	}
	if err := decodeJSON(b, p); err != nil { // one pass, numbers kept as written
		return errand.Errorf(errand.EINVALID, "the request must be an object with query, and optionally operationName, variables and extensions")
	}
	if p.Query == "" {
		return errand.Errorf(errand.EINVALID, "the request has no query")
	}
	return nil
}

func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// requestErrorStatus is the status of a request error as
// application/graphql-response+json: its first error's code's, else 400.
func requestErrorStatus(errs gqlerror.List) int {
	if len(errs) > 0 {
		if code, ok := errs[0].Extensions["code"].(string); ok {
			if st := httpapi.Problem(errand.Errorf(code, "")).Status; st >= 400 && st < 500 {
				return st
			}
		}
	}
	return http.StatusBadRequest
}

// oneResult keeps a query's or mutation's result.
type oneResult struct{ b []byte }

func (o *oneResult) next(b []byte, _, _ int64, _ bool) error { o.b = b; return nil }
func (o *oneResult) flush() error                            { return nil }

func writeResult(w http.ResponseWriter, status int, b []byte, media string) {
	h := w.Header()
	h.Set("Content-Type", media+"; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeHTTPError answers an error that came before GraphQL could: a request
// error in GraphQL's shape, with errand's code and the status REST would
// answer (or status, when given).
func (s *Server) writeHTTPError(w http.ResponseWriter, r *http.Request, err error, gr bool, status int) {
	p := httpapi.Problem(err)
	if p.Code == errand.EINTERNAL {
		s.cfg.Log.Error("graphql: internal error", "err", err, "request_id", httpapi.RequestID(r.Context()))
	}
	if status == 0 {
		status = p.Status
	}
	var e *errand.Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
	}
	ext := map[string]any{"code": p.Code, "status": status}
	if len(p.Errors) > 0 {
		ext["errors"] = p.Errors
	}
	media := mediaJSON
	if gr {
		media = mediaGraphQL
	}
	writeResult(w, status, mustJSON(map[string]any{"errors": []map[string]any{{"message": p.Detail, "extensions": ext}}}), media)
}
