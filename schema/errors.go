package schema

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Error is a schema that does not compile.
type Error struct {
	// Name is the schema's name as given to Compile.
	Name string
	// Path leads from the schema's root to the key that is wrong
	// (["properties", "type", "enum"]); empty when no key is to blame.
	Path []string
	// Message says what is wrong, for people.
	Message string
}

func (e *Error) Error() string {
	if len(e.Path) == 0 {
		return "schema " + e.Name + ": " + e.Message
	}
	return "schema " + e.Name + " at " + pointer(e.Path) + ": " + e.Message
}

// explain turns a compile error of the schema doc (added at loc) into an
// *Error that points at the key to blame: the first keyword the meta-schema
// refuses, or the $ref that does not resolve.
func explain(name, loc string, doc any, err error) *Error {
	var (
		sve    *jsonschema.SchemaValidationError
		ptr    *jsonschema.JSONPointerNotFoundError
		anchor *jsonschema.AnchorNotFoundError
		load   *jsonschema.LoadURLError
	)
	switch {
	case errors.As(err, &sve):
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			path, msg := firstLeaf(ve)
			return &Error{Name: name, Path: path, Message: "not a valid JSON Schema (draft 2020-12): " + msg}
		}
	case errors.As(err, &ptr):
		return refError(name, loc, doc, ptr.URL, "does not resolve: the schema has no "+fragment(ptr.URL))
	case errors.As(err, &anchor):
		return refError(name, loc, doc, anchor.Reference, "does not resolve: the schema has no such $anchor")
	case errors.As(err, &load):
		return refError(name, loc, doc, load.URL, "points outside the schema: schemas may only refer to themselves (#/$defs/…)")
	}
	return &Error{Name: name, Message: strings.ReplaceAll(err.Error(), loc, "")}
}

// firstLeaf is where the innermost first cause of a meta-schema failure is,
// and what it says.
func firstLeaf(ve *jsonschema.ValidationError) ([]string, string) {
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	return ve.InstanceLocation, ve.ErrorKind.LocalizedString(printer)
}

func fragment(u string) string {
	if _, f, ok := strings.Cut(u, "#"); ok {
		if f == "" {
			return "root"
		}
		return f
	}
	return u
}

// refError blames the $ref whose target (resolved against loc) is target.
func refError(name, loc string, doc any, target, msg string) *Error {
	path, ref := findRef(doc, nil, func(ref string) bool { return resolve(loc, ref) == target || ref == target })
	if path == nil {
		return &Error{Name: name, Message: fmt.Sprintf("$ref %q %s", fragment(target), msg)}
	}
	return &Error{Name: name, Path: path, Message: fmt.Sprintf("%q %s", ref, msg)}
}

func resolve(base, ref string) string {
	b, err := url.Parse(base)
	if err != nil {
		return ref
	}
	r, err := b.Parse(ref)
	if err != nil {
		return ref
	}
	return r.String()
}

// findRef returns the path of the first $ref (or $dynamicRef) in v that match
// accepts, and its value.
func findRef(v any, path []string, match func(string) bool) ([]string, string) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range []string{"$ref", "$dynamicRef"} {
			if s, ok := v[k].(string); ok && match(s) {
				return append(path, k), s
			}
		}
		for _, k := range sortedKeys(v) {
			if p, s := findRef(v[k], append(path[:len(path):len(path)], k), match); p != nil {
				return p, s
			}
		}
	case []any:
		for i, item := range v {
			if p, s := findRef(item, append(path[:len(path):len(path)], strconv.Itoa(i)), match); p != nil {
				return p, s
			}
		}
	}
	return nil, ""
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
