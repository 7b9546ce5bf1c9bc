package config

import "github.com/errandhq/errand"

// GraphQL tunes /v1/graphql.
type GraphQL struct {
	// Introspection answers __schema and __type queries. Defaults to true.
	Introspection *bool `yaml:"introspection"`
	// MaxDepth caps how deeply a document nests fields. Defaults to 12.
	MaxDepth int `yaml:"max_depth"`
	// MaxComplexity caps an operation's cost (a field costs one plus what it
	// selects; a page of first: N, N times what an item selects). Defaults to 5000.
	MaxComplexity int `yaml:"max_complexity"`
	// MaxAliases caps a document's aliased fields. Defaults to 30.
	MaxAliases int `yaml:"max_aliases"`
	// MaxDocumentBytes caps a document's size. Defaults to 32768.
	MaxDocumentBytes int `yaml:"max_document_bytes"`
	// MaxSubscriptions caps the operations one WebSocket runs at once.
	// Defaults to 100.
	MaxSubscriptions int `yaml:"max_subscriptions_per_connection"`
}

func (g *GraphQL) applyDefaults() {
	if g.Introspection == nil {
		on := true
		g.Introspection = &on
	}
	g.MaxDepth = orInt(g.MaxDepth, errand.DefaultGraphQLMaxDepth)
	g.MaxComplexity = orInt(g.MaxComplexity, errand.DefaultGraphQLMaxComplexity)
	g.MaxAliases = orInt(g.MaxAliases, errand.DefaultGraphQLMaxAliases)
	g.MaxDocumentBytes = orInt(g.MaxDocumentBytes, errand.DefaultGraphQLMaxDocumentBytes)
	g.MaxSubscriptions = orInt(g.MaxSubscriptions, errand.DefaultGraphQLMaxSubscriptions)
}

func orInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

func (c *Config) validateGraphQL(bad func(path []string, format string, args ...any)) {
	g := &c.GraphQL
	for _, r := range []struct {
		key       string
		n, lo, hi int
	}{
		{"max_depth", g.MaxDepth, 2, 100},
		{"max_complexity", g.MaxComplexity, 10, 1_000_000},
		{"max_aliases", g.MaxAliases, 1, 1000},
		{"max_document_bytes", g.MaxDocumentBytes, 256, int(c.HTTP.MaxBodyBytes)},
		{"max_subscriptions_per_connection", g.MaxSubscriptions, 1, 1000},
	} {
		if r.n < r.lo || r.n > r.hi {
			bad([]string{"graphql", r.key}, "must be between %d and %d", r.lo, r.hi)
		}
	}
}
