package spec

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Documents are the generated documents and the /docs page.
type Documents struct {
	OpenAPIJSON, OpenAPIYAML, AsyncAPIJSON, AsyncAPIYAML []byte
	// Page is the /docs page.
	Page []byte
}

// Generate makes the documents for in.
func Generate(in Input) (*Documents, error) {
	if in.Config == nil {
		return nil, fmt.Errorf("spec: no configuration")
	}
	m, err := newModel(&in)
	if err != nil {
		return nil, err
	}
	oa, err := openAPIDoc(&in, m)
	if err != nil {
		return nil, err
	}
	aa, err := asyncAPIDoc(m)
	if err != nil {
		return nil, err
	}
	// The two documents are written at once: they only read the model.
	d := &Documents{}
	var wg sync.WaitGroup
	var asyncErr error
	wg.Go(func() { d.AsyncAPIJSON, d.AsyncAPIYAML, asyncErr = encodeBoth(aa) })
	d.OpenAPIJSON, d.OpenAPIYAML, err = encodeBoth(oa)
	if err == nil {
		d.Page, err = renderPage(m, oa)
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if asyncErr != nil {
		return nil, asyncErr
	}
	return d, nil
}

// encodeBoth writes a document as JSON and as YAML.
func encodeBoth(doc any) (js, yml []byte, err error) {
	if js, err = encodeJSON(doc); err != nil {
		return nil, nil, err
	}
	yml, err = toYAML(js)
	return js, yml, err
}

// encodeJSON writes a document indented (they are committed and diffed),
// with <, > and & as they are.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("spec: encode: %w", err)
	}
	return b.Bytes(), nil
}

// Server serves the documents and the /docs page: it is httpapi's
// Contracts. It makes them when Update is given an Input and keeps them,
// with their headers, until Update is given a different one; serving
// allocates nothing.
type Server struct {
	mu     sync.Mutex // serializes Update
	cur    atomic.Pointer[built]
	builds atomic.Int64 // how many times the documents were made (tests)
}

// built is one generation of everything served.
type built struct {
	key   [32]byte
	files map[string]*file // by name: openapi.json, …, docs, assets/<name>
}

// Update makes the documents for in, unless they were made for the same
// input already. Until its first success, every request is answered 503.
func (s *Server) Update(in Input) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fp, err := json.Marshal(struct {
		Input
		Ext int
	}{in, len(in.Extensions)})
	if err != nil {
		return fmt.Errorf("spec: fingerprint: %w", err)
	}
	key := sha256.Sum256(fp)
	if cur := s.cur.Load(); cur != nil && cur.key == key {
		return nil
	}
	d, err := Generate(in)
	if err != nil {
		return err
	}
	b := &built{key: key, files: map[string]*file{
		"openapi.json":  newFile(d.OpenAPIJSON, "application/json", ""),
		"openapi.yaml":  newFile(d.OpenAPIYAML, "application/yaml", ""),
		"asyncapi.json": newFile(d.AsyncAPIJSON, "application/json", ""),
		"asyncapi.yaml": newFile(d.AsyncAPIYAML, "application/yaml", ""),
		"docs":          newFile(d.Page, "text/html; charset=utf-8", pageCSP),
	}}
	for name, a := range assets() {
		b.files["assets/"+name] = a
	}
	s.cur.Store(b)
	s.builds.Add(1)
	return nil
}

// pageCSP lets /docs use its own style sheet and script, and nothing else.
const pageCSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Document serves a generated document by file name.
func (s *Server) Document(name string) http.Handler { return s.serve(name) }

// Page serves /docs.
func (s *Server) Page() http.Handler { return s.serve("docs") }

// Asset serves /docs/assets/{name}.
func (s *Server) Asset() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.file(w, r, "assets/"+r.PathValue("name"))
	})
}

func (s *Server) serve(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.file(w, r, name) })
}

var (
	notReady = []byte(`{"type":"/docs/problems#unavailable","title":"Service unavailable","status":503,"code":"unavailable","detail":"the API's description is not made yet"}` + "\n")
	notFound = []byte(`{"type":"/docs/problems#not_found","title":"Not found","status":404,"code":"not_found","detail":"no such file"}` + "\n")
	problemT = []string{"application/problem+json"}
)

func (s *Server) file(w http.ResponseWriter, r *http.Request, name string) {
	b := s.cur.Load()
	var f *file
	if b != nil {
		f = b.files[name]
	}
	switch {
	case b == nil:
		w.Header()["Content-Type"] = problemT
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(notReady)
	case f == nil:
		w.Header()["Content-Type"] = problemT
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write(notFound)
	default:
		f.ServeHTTP(w, r)
	}
}

// file is one thing served, with its headers made once.
type file struct {
	body   []byte
	header map[string][]string
	length []string
	etag   string
	gzOnce sync.Once
	gz     []byte // body gzipped, made at the first request that accepts it
	gzLen  []string
}

func newFile(body []byte, contentType, csp string) *file {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	f := &file{body: body, etag: etag, length: []string{strconv.Itoa(len(body))}, header: map[string][]string{
		"Content-Type":  {contentType},
		"Etag":          {etag},
		"Cache-Control": {"no-cache"},
	}}
	if csp != "" {
		f.header["Content-Security-Policy"] = []string{csp}
	}
	return f
}

var (
	gzipValue = []string{"gzip"}
	varyValue = []string{"Accept-Encoding"}
)

// ServeHTTP answers with the file, 304 when the client has it (ETag), gzipped
// when the client accepts it. It allocates nothing but the gzipped body,
// once: header values are shared (each with a capacity of its length, so an
// append by a middleware copies instead of writing into them).
func (f *file) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range f.header {
		h[k] = v
	}
	if v := h["Vary"]; len(v) == 0 {
		h["Vary"] = varyValue
	} else if !slices.Contains(v, "Accept-Encoding") {
		h["Vary"] = append(v[:len(v):len(v)], "Accept-Encoding")
	}
	if matches(r.Header["If-None-Match"], f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := f.body
	if acceptsGzip(r.Header["Accept-Encoding"]) {
		f.gzOnce.Do(f.compress)
		h["Content-Encoding"], h["Content-Length"], body = gzipValue, f.gzLen, f.gz
	} else {
		delete(h, "Content-Encoding")
		h["Content-Length"] = f.length
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (f *file) compress() {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	_, _ = zw.Write(f.body)
	_ = zw.Close()
	f.gz, f.gzLen = b.Bytes(), []string{strconv.Itoa(b.Len())}
}

// matches reports whether an If-None-Match header names etag (or is *).
func matches(values []string, etag string) bool {
	for _, v := range values {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			part = strings.TrimPrefix(strings.TrimSpace(part), "W/")
			if part == etag || part == "*" {
				return true
			}
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header takes gzip (and does
// not refuse it with q=0).
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				q := strings.ReplaceAll(params, " ", "")
				return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
			}
		}
	}
	return false
}
