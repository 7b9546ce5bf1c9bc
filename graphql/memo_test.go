package graphql

import (
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// TestPureSelections: only a subscription that selects the event's own
// fields shares its results with other subscribers of the same document.
func TestPureSelections(t *testing.T) {
	for q, want := range map[string]bool{
		`subscription { channel(channel: "a") { id type data } }`:                                   true,
		`subscription { c: channel(channel: "a") { __typename id ... on Event { time stream } } }`:  true,
		`subscription { channel(channel: "a") { ...E } } fragment E on Event { id data }`:           true,
		`subscription { channel(channel: "a") { id job { id } } }`:                                  false,
		`subscription { channel(channel: "a") { ...E } } fragment E on Event { id job { status } }`: false,
		`subscription { jobEvents(id: "j") { id @include(if: $x) type } }`:                          true,
	} {
		doc, err := parser.ParseQuery(&ast.Source{Input: q})
		if err != nil {
			t.Fatal(err)
		}
		frags := map[string]*ast.FragmentDefinition{}
		for _, f := range doc.Fragments {
			frags[f.Name] = f
		}
		if got := pureRoot(doc.Operations[0].SelectionSet, frags, 0); got != want {
			t.Errorf("%s: shared %v, want %v", q, got, want)
		}
	}
}
