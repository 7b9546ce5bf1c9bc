package graphql

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/errandhq/errand"
	"github.com/errandhq/errand/graphql/exec"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// parserTokenLimit caps the tokens the parser reads before it gives up, so
// the size cap holds whatever the document's shape.
const parserTokenLimit = 20000

// limits is the executor extension that guards against hostile documents.
// Before the executor parses and validates a document it checks the size,
// then parses it and measures its depth, aliases and fields (fragments
// expanded, each measured once): validation compares fields pairwise, so a
// thousand aliases must be refused before it runs. After validation it
// checks the operation's complexity and whether introspection is allowed.
type limits struct {
	s *Server
	// costs remembers the complexity of operations whose pages' sizes are
	// not variables (by operation name and document).
	costs *lru.LRU[int]
}

var (
	_ graphql.HandlerExtension          = (*limits)(nil)
	_ graphql.OperationParameterMutator = (*limits)(nil)
	_ graphql.OperationContextMutator   = (*limits)(nil)
)

func (l *limits) ExtensionName() string                          { return "ErrandLimits" }
func (l *limits) Validate(schema graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters checks the document before it is parsed for
// execution; one already parsed and validated passed these checks before.
func (l *limits) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	cfg := &l.s.cfg
	if len(p.Query) > cfg.MaxDocumentBytes {
		e := limitError("max_document_bytes", cfg.MaxDocumentBytes, "the document is %d bytes; at most %d are allowed (graphql.max_document_bytes)",
			len(p.Query), cfg.MaxDocumentBytes)
		e.Extensions["code"] = errand.ETOOLARGE
		return e
	}
	if _, ok := l.s.docs.Get(ctx, p.Query); ok {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, parserTokenLimit)
	if err != nil {
		return nil // the executor reports the syntax error
	}
	return l.check(measureDocument(doc))
}

func (l *limits) check(m measure) *gqlerror.Error {
	cfg := &l.s.cfg
	switch {
	case m.introspects && cfg.NoIntrospection:
		return &gqlerror.Error{Message: "introspection is turned off on this server (graphql.introspection); the schema is published at /docs",
			Extensions: map[string]any{"code": errand.EFORBIDDEN}}
	case m.depth > cfg.MaxDepth:
		return limitError("max_depth", cfg.MaxDepth, "the document nests fields %d levels deep; at most %d are allowed (graphql.max_depth)", m.depth, cfg.MaxDepth)
	case m.aliases > cfg.MaxAliases:
		return limitError("max_aliases", cfg.MaxAliases, "the document has %s aliased fields; at most %d are allowed (graphql.max_aliases)", count(m.aliases), cfg.MaxAliases)
	case m.fields > cfg.MaxComplexity:
		return limitError("max_complexity", cfg.MaxComplexity, "the document selects %s fields once its fragments are expanded; its complexity may be at most %d (graphql.max_complexity)",
			count(m.fields), cfg.MaxComplexity)
	}
	return nil
}

// count writes a saturated count as "more than a million".
func count(n int) string {
	if n >= saturated {
		return "more than a million"
	}
	return fmt.Sprint(n)
}

// MutateOperationContext checks the operation's complexity and allows
// introspection when the configuration does.
func (l *limits) MutateOperationContext(ctx context.Context, op *graphql.OperationContext) *gqlerror.Error {
	cfg := &l.s.cfg
	if c := l.cost(ctx, op); c > cfg.MaxComplexity {
		return limitError("max_complexity", cfg.MaxComplexity, "the operation's complexity is %d; at most %d is allowed (graphql.max_complexity): ask for smaller pages (first) or fewer fields",
			c, cfg.MaxComplexity)
	}
	op.DisableIntrospection = cfg.NoIntrospection
	return nil
}

// cost is the operation's complexity, remembered when no variable sets a
// page's size.
func (l *limits) cost(ctx context.Context, op *graphql.OperationContext) int {
	key := op.OperationName + "\x00" + op.RawQuery
	if c, ok := l.costs.Get(ctx, key); ok {
		return c
	}
	c := complexity.Calculate(ctx, l.s.schema, op.Operation, op.Variables)
	if !pagedByVariable(op.Doc) {
		l.costs.Add(ctx, key, c)
	}
	return c
}

// pagedByVariable reports whether a first: argument of the document is a
// variable (then its complexity depends on the variables).
func pagedByVariable(doc *ast.QueryDocument) bool {
	found := false
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if a := s.Arguments.ForName("first"); a != nil && a.Value.Kind == ast.Variable {
					found = true
				}
				walk(s.SelectionSet)
			case *ast.InlineFragment:
				walk(s.SelectionSet)
			}
		}
	}
	for _, op := range doc.Operations {
		walk(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		walk(f.SelectionSet)
	}
	return found
}

// measure is what a selection set costs: its depth, its aliased fields and
// all its fields, fragments expanded (counts saturate at a million).
type measure struct {
	depth, aliases, fields int
	introspects            bool
}

const saturated = 1_000_000

func (m *measure) add(o measure) {
	m.depth = max(m.depth, o.depth)
	m.aliases = min(m.aliases+o.aliases, saturated)
	m.fields = min(m.fields+o.fields, saturated)
	m.introspects = m.introspects || o.introspects
}

// measureDocument measures every operation of a parsed (not yet validated)
// document and returns the largest figures.
func measureDocument(doc *ast.QueryDocument) measure {
	w := &walker{frags: map[string]*ast.FragmentDefinition{}, memo: map[string]*measure{}}
	for _, f := range doc.Fragments {
		w.frags[f.Name] = f
	}
	var out measure
	for _, op := range doc.Operations {
		out.add(w.set(op.SelectionSet))
	}
	return out
}

type walker struct {
	frags map[string]*ast.FragmentDefinition
	memo  map[string]*measure // nil entry: being measured (a cycle, which validation refuses)
}

func (w *walker) set(set ast.SelectionSet) measure {
	var m measure
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			m.add(w.field(s))
		case *ast.InlineFragment:
			m.add(w.set(s.SelectionSet))
		case *ast.FragmentSpread:
			m.add(w.spread(s.Name))
		}
	}
	return m
}

func (w *walker) field(f *ast.Field) measure {
	if strings.HasPrefix(f.Name, "__") {
		// Introspection: the validator bounds its depth itself.
		return measure{introspects: f.Name == "__schema" || f.Name == "__type"}
	}
	m := w.set(f.SelectionSet)
	m.depth++
	m.fields = min(m.fields+1, saturated)
	if f.Alias != "" && f.Alias != f.Name {
		m.aliases = min(m.aliases+1, saturated)
	}
	return m
}

func (w *walker) spread(name string) measure {
	if m, seen := w.memo[name]; seen {
		if m == nil {
			return measure{}
		}
		return *m
	}
	f := w.frags[name]
	if f == nil {
		return measure{}
	}
	w.memo[name] = nil
	m := w.set(f.SelectionSet)
	w.memo[name] = &m
	return m
}

// complexityRoot prices the paged fields: a page of first: N costs N times
// what one item selects.
func complexityRoot() exec.ComplexityRoot {
	var c exec.ComplexityRoot
	c.Query.Jobs = func(child int, _ *string, _ *errand.Status, first *int, _ *string) int { return page(child, first) }
	c.Query.ChannelEvents = func(child int, _ string, _ *string, first *int) int { return page(child, first) }
	c.Query.Deliveries = func(child int, _, _ *string, _ *errand.DeliveryStatus, first *int, _ *string) int {
		return page(child, first)
	}
	c.Job.Events = func(child int, _ *string, first *int) int { return page(child, first) }
	c.Webhook.Deliveries = func(child int, _ *errand.DeliveryStatus, first *int, _ *string) int { return page(child, first) }
	return c
}

func page(child int, first *int) int {
	n := 50
	if first != nil {
		n = max(*first, 1)
	}
	if child > 0 && n > math.MaxInt32/child {
		return math.MaxInt32
	}
	return 1 + n*child
}
