package graphql

import (
	"cmp"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/errandhq/errand"
	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/graphql/exec"
	"github.com/errandhq/errand/httpapi"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/webhook"
	"github.com/vektah/gqlparser/v2/ast"
)

// Config tunes the API. The zero value is ready to use.
type Config struct {
	// NoIntrospection refuses __schema and __type queries. Defaults to false:
	// the schema is public (it is also published with the API's contracts).
	NoIntrospection bool
	// MaxDepth caps how deeply a document nests fields (introspection aside).
	// Defaults to errand.DefaultGraphQLMaxDepth (12).
	MaxDepth int
	// MaxComplexity caps an operation's cost: each field costs one plus what
	// it selects, a page of first: N costs N times what one item selects.
	// Defaults to errand.DefaultGraphQLMaxComplexity (5000).
	MaxComplexity int
	// MaxAliases caps the aliased fields of a document (fragments expanded).
	// Defaults to errand.DefaultGraphQLMaxAliases (30).
	MaxAliases int
	// MaxDocumentBytes caps the document's size. Defaults to
	// errand.DefaultGraphQLMaxDocumentBytes (32 KiB).
	MaxDocumentBytes int
	// MaxSubscriptions caps the subscriptions one WebSocket holds at once.
	// Defaults to errand.DefaultGraphQLMaxSubscriptions (100).
	MaxSubscriptions int
	// Log receives internal errors. Defaults to slog.Default().
	Log *slog.Logger
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.MaxDepth = cmp.Or(out.MaxDepth, errand.DefaultGraphQLMaxDepth)
	out.MaxComplexity = cmp.Or(out.MaxComplexity, errand.DefaultGraphQLMaxComplexity)
	out.MaxAliases = cmp.Or(out.MaxAliases, errand.DefaultGraphQLMaxAliases)
	out.MaxDocumentBytes = cmp.Or(out.MaxDocumentBytes, errand.DefaultGraphQLMaxDocumentBytes)
	out.MaxSubscriptions = cmp.Or(out.MaxSubscriptions, errand.DefaultGraphQLMaxSubscriptions)
	out.Log = cmp.Or(out.Log, slog.Default())
	return out
}

func (c *Config) validate() error {
	if c.MaxDepth < 1 || c.MaxComplexity < 1 || c.MaxAliases < 0 || c.MaxDocumentBytes < 64 || c.MaxSubscriptions < 1 {
		return errors.New("graphql config: depth, complexity, document size and subscriptions must be positive; aliases not negative")
	}
	return nil
}

// Deps are the services the API speaks to.
type Deps struct {
	Jobs     *job.Service
	Channels *channel.Service
	// Webhooks serves the webhook fields; nil answers them as not found.
	Webhooks *webhook.Service
	// Store and Hub are the event log subscriptions follow (event.Follow).
	Store storage.Reader
	Hub   *event.Hub
}

// Server is the GraphQL API: its executable schema and its transports.
type Server struct {
	d      Deps
	cfg    Config
	schema graphql.ExecutableSchema
	exec   *executor.Executor
	docs   *lru.LRU[*ast.QueryDocument] // parsed and validated documents
}

var _ httpapi.GraphQL = (*Server)(nil)

// New returns the API over the services.
func New(d Deps, cfg *Config) (*Server, error) {
	c := cfg.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	if d.Jobs == nil || d.Channels == nil || d.Store == nil || d.Hub == nil {
		return nil, errors.New("graphql: jobs, channels, store and hub are required")
	}
	s := &Server{d: d, cfg: c, docs: lru.New[*ast.QueryDocument](1000)}
	s.schema = exec.NewExecutableSchema(exec.Config{Resolvers: &resolver{d: d}, Complexity: complexityRoot()})
	s.exec = executor.New(s.schema)
	s.exec.SetQueryCache(s.docs)
	s.exec.SetErrorPresenter(s.present)
	s.exec.SetRecoverFunc(s.recoverPanic)
	s.exec.Use(&limits{s: s, costs: lru.New[int](1000)})
	return s, nil
}

// Handler serves /v1/graphql: GraphQL over HTTP (POST, and GET for queries),
// a WebSocket speaking graphql-transport-ws, or an event stream speaking
// graphql-sse (Accept: text/event-stream).
func (s *Server) Handler(a httpapi.Access) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			s.serveWS(w, r, a)
		case accepts(r, "text/event-stream"):
			s.serveSSE(w, r, a)
		default:
			s.serveHTTP(w, r, a)
		}
	})
}

// accepts reports whether r's Accept header names media type mt.
func accepts(r *http.Request, mt string) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if t, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && strings.EqualFold(t, mt) {
			return true
		}
	}
	return false
}
