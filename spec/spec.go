package spec

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/errandhq/errand/config"
)

// Input is what the documents are made from.
type Input struct {
	// Config is errand's configuration: operations, channels, auth, listen.
	Config *config.Config
	// Routes are the patterns of the routes the server registers
	// (httpapi.Routes), each documented by this package's table, an
	// operation's route or an Extension; an undocumented one is an error.
	Routes []string
	// URL is where clients reach errand ("https://errand.example"). Defaults
	// to http.public_url, else to http(s)://<listen> (localhost for an
	// unspecified host).
	URL string
	// Version is errand's version, the documents' info.version. Defaults to "dev".
	Version string
	// Extensions are the transports that describe themselves (see Extension).
	Extensions []Extension
}

// Extension is a transport that adds itself to the documents: a GraphQL
// endpoint, a broker bridge. cmd/errand passes one per transport it serves
// (Input.Extensions). Everything in it is merged by key; a key that is
// already taken is an error.
type Extension struct {
	// Name names the extension in errors ("graphql", "bridge nats").
	Name string
	// Routes document the HTTP routes the transport registers in httpapi,
	// by pattern ("POST /v1/graphql"): the OpenAPI document's paths.
	Routes map[string]Route
	// Schemas are added to the components/schemas of both documents.
	Schemas map[string]any
	// Servers, Channels, Operations and Messages are AsyncAPI 3.0 objects
	// added under servers, channels, operations and components/messages
	// ({"host": "nats.internal:4222", "protocol": "nats", "bindings": …}).
	// A server of errand's own says "host": Self; its protocol "http" or
	// "ws" becomes https/wss under TLS and its pathname is put under the
	// base URL's path.
	Servers, Channels, Operations, Messages map[string]any
	// Tags group the extension's routes in the OpenAPI document and /docs.
	Tags []Tag
	// Sections are shown on /docs after errand's own (a schema, a protocol).
	Sections []Section
}

// Self is the host of a server that is errand itself (see Extension.Servers).
const Self = "{errand}"

// Tag is an OpenAPI tag: a name routes refer to and what it groups.
type Tag struct{ Name, Description string }

// Section is a part of the /docs page: a title, paragraphs, and optionally a
// block of code (a schema, an example).
type Section struct {
	ID, Title string
	Text      []string
	Code      string
}

// Route documents one HTTP route for the OpenAPI document.
type Route struct {
	// ID is its operationId, unique in the document ("submitJob").
	ID string
	// Tag groups it ("Jobs", "Workers").
	Tag string
	// Summary is one line; Description may say more (CommonMark).
	Summary, Description string
	// Access is who may call it: Public, Bearer (the default), Stream
	// (bearer or a ticket) or Worker (bearer with workers:lease).
	Access Access
	// Query lists its query parameters; Headers the request headers it reads.
	Query, Headers []Param
	// Body is its request body; nil when it reads none.
	Body *Body
	// Answers are its successful answers.
	Answers []Answer
	// Errors are the problem codes it may answer beyond those every route of
	// its access may (unauthorized, forbidden, internal, unavailable; and
	// malformed_json, validation_failed, body_too_large for a JSON body).
	Errors []string
}

// Access says who may call a route.
type Access int

// The kinds of access.
const (
	Bearer Access = iota // an API key, a JWT or an access token
	Public               // anyone
	Stream               // as Bearer, or a single-use ticket in ?ticket= (EventSource, WebSocket)
	Worker               // as Bearer, with a workers:lease permission
)

// Param is a query parameter or a header.
type Param struct {
	Name, Description string
	Schema            any
	Required          bool
	Example           any
}

// Body is a request body.
type Body struct {
	// ContentType defaults to application/json.
	ContentType string
	Description string
	Schema      any
	Required    bool
	Example     any
}

// Answer is a successful answer.
type Answer struct {
	Status      int
	Description string
	// ContentType defaults to application/json when Schema is set.
	ContentType string
	Schema      any
	// Headers are the answer's headers, by name, each a component of
	// components/headers ("Location", "Retry-After").
	Headers []string
	// Alt are more representations of the same answer ("text/event-stream").
	Alt []Body
}

// baseURL is where clients reach errand.
func baseURL(in *Input) string {
	if in.URL != "" {
		return strings.TrimSuffix(in.URL, "/")
	}
	c := in.Config
	if c.HTTP.PublicURL != "" {
		return strings.TrimSuffix(c.HTTP.PublicURL, "/")
	}
	scheme := "http"
	if c.TLS.CertFile != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return scheme + "://localhost"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// hostOf splits a base URL into its scheme, host:port and path.
func hostOf(base string) (scheme, host, path string) {
	u, err := url.Parse(base)
	if err != nil {
		return "http", "localhost", ""
	}
	return u.Scheme, u.Host, strings.TrimSuffix(u.Path, "/")
}

// merge adds src's entries to dst, refusing a key already there.
func merge[V any](what, from string, dst map[string]V, src map[string]V) error {
	for k, v := range src {
		if _, dup := dst[k]; dup {
			return fmt.Errorf("spec: %s adds %s %q, which is already there", from, what, k)
		}
		dst[k] = v
	}
	return nil
}
