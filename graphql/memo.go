package graphql

import (
	"encoding/json"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// eventFields are the fields of an Event whose values are the event's own:
// a result that selects only them is the same for every subscriber of the
// same document and variables, whoever it is.
var eventFields = map[string]bool{"id": true, "stream": true, "type": true, "time": true, "data": true, "__typename": true}

// memoKey is what subscribers that may share their results for an event
// share: the document (parsed once and cached, so one pointer), the
// operation and the variables; "" when the operation selects more than the
// event's own fields (Event.job reads the job as the subscriber).
func memoKey(op *graphql.OperationContext) string {
	frags := map[string]*ast.FragmentDefinition{}
	for _, f := range op.Doc.Fragments {
		frags[f.Name] = f
	}
	if !pureRoot(op.Operation.SelectionSet, frags, 0) {
		return ""
	}
	vars, err := json.Marshal(op.Variables) // sorted keys
	if err != nil {
		return ""
	}
	return fmt.Sprintf("graphql|%p|%s|%s", op.Doc, op.OperationName, vars)
}

// pureRoot checks the subscription's root selections: the root field selects
// event fields only.
func pureRoot(set ast.SelectionSet, frags map[string]*ast.FragmentDefinition, depth int) bool {
	if depth > 8 {
		return false
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name != "__typename" && !pureEvent(s.SelectionSet, frags, 0) {
				return false
			}
		case *ast.InlineFragment:
			if !pureRoot(s.SelectionSet, frags, depth+1) {
				return false
			}
		case *ast.FragmentSpread:
			if f := frags[s.Name]; f == nil || !pureRoot(f.SelectionSet, frags, depth+1) {
				return false
			}
		}
	}
	return true
}

// pureEvent reports whether an Event selection holds event fields only.
func pureEvent(set ast.SelectionSet, frags map[string]*ast.FragmentDefinition, depth int) bool {
	if depth > 8 {
		return false
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if !eventFields[s.Name] || len(s.SelectionSet) > 0 {
				return false
			}
		case *ast.InlineFragment:
			if !pureEvent(s.SelectionSet, frags, depth+1) {
				return false
			}
		case *ast.FragmentSpread:
			if f := frags[s.Name]; f == nil || !pureEvent(f.SelectionSet, frags, depth+1) {
				return false
			}
		}
	}
	return true
}
