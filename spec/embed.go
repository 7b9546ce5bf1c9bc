package spec

import (
	"encoding/json"
	"sort"
	"strings"
)

// embedSchema is a schema from the configuration as it goes into a document's
// components under name: its own references ("#/$defs/period") are rewritten
// to point into the component ("#/components/schemas/<name>/$defs/period"),
// because in a document "#" is the document, not the schema. A root $id is
// dropped (the component is the schema's identity there). nil is {} (any JSON).
func embedSchema(raw json.RawMessage, name string) any {
	if len(raw) == 0 {
		return schema{}
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return schema{}
	}
	if m, ok := v.(map[string]any); ok {
		delete(m, "$id")
	}
	return rewriteRefs(v, "#/components/schemas/"+name)
}

func rewriteRefs(v any, base string) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "$ref" || k == "$dynamicRef") && strings.HasPrefix(s, "#") &&
				(len(s) == 1 || s[1] == '/') {
				v[k] = base + s[1:]
				continue
			}
			v[k] = rewriteRefs(x, base)
		}
	case []any:
		for i, x := range v {
			v[i] = rewriteRefs(x, base)
		}
	}
	return v
}

// example makes a value the schema s accepts, for examples and the curl
// lines of /docs: its example, default, const or first enum value when it
// has one, else one built from its type (an object with its required
// properties). root resolves local references; depth stops recursion.
func exampleOf(s any, root any, depth int) any {
	m, ok := s.(map[string]any)
	if !ok || depth > 8 {
		return nil
	}
	if r, ok := m["$ref"].(string); ok {
		if target := resolvePointer(root, r); target != nil {
			return exampleOf(target, root, depth+1)
		}
	}
	if ex, ok := m["examples"].([]any); ok && len(ex) > 0 {
		return ex[0]
	}
	for _, k := range []string{"example", "default", "const"} {
		if v, ok := m[k]; ok {
			return v
		}
	}
	if e, ok := m["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	for _, k := range []string{"oneOf", "anyOf", "allOf"} {
		if subs, ok := m[k].([]any); ok && len(subs) > 0 {
			if k == "allOf" {
				return mergeExamples(subs, root, depth)
			}
			return exampleOf(subs[0], root, depth+1)
		}
	}
	return exampleOfType(m, root, depth)
}

func exampleOfType(m map[string]any, root any, depth int) any {
	typ, _ := m["type"].(string)
	if ts, ok := m["type"].([]any); ok && len(ts) > 0 {
		typ, _ = ts[0].(string)
	}
	if typ == "" && m["properties"] != nil {
		typ = "object"
	}
	switch typ {
	case "object":
		out := map[string]any{}
		props, _ := m["properties"].(map[string]any)
		req, _ := m["required"].([]any)
		names := make([]string, 0, len(req))
		for _, r := range req {
			if n, ok := r.(string); ok {
				names = append(names, n)
			}
		}
		if len(names) == 0 && len(props) <= 3 { // a small object: show it whole
			for n := range props {
				names = append(names, n)
			}
			sort.Strings(names)
		}
		for _, n := range names {
			out[n] = exampleOf(props[n], root, depth+1)
		}
		return out
	case "array":
		if items, ok := m["items"]; ok {
			return []any{exampleOf(items, root, depth+1)}
		}
		return []any{}
	case "string":
		return exampleString(m)
	case "integer":
		if v, ok := m["minimum"].(float64); ok {
			return v
		}
		return 1
	case "number":
		if v, ok := m["minimum"].(float64); ok {
			return v
		}
		return 1.5
	case "boolean":
		return true
	case "null":
		return nil
	}
	return map[string]any{}
}

func exampleString(m map[string]any) string {
	switch m["format"] {
	case "date-time":
		return "2026-12-01T00:00:00Z"
	case "date":
		return "2026-12-01"
	case "uri", "url", "iri":
		return "https://example.com/"
	case "email":
		return "someone@example.com"
	case "uuid":
		return "01234567-89ab-cdef-0123-456789abcdef"
	}
	if n, ok := m["minLength"].(float64); ok && n > 6 {
		return strings.Repeat("x", int(n))
	}
	return "string"
}

func mergeExamples(subs []any, root any, depth int) any {
	out := map[string]any{}
	for _, s := range subs {
		if m, ok := exampleOf(s, root, depth+1).(map[string]any); ok {
			for k, v := range m {
				out[k] = v
			}
		}
	}
	return out
}

// resolvePointer follows a local reference ("#/$defs/x") from root.
func resolvePointer(root any, ref string) any {
	p, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil
	}
	cur := root
	for _, tok := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[tok]
	}
	return cur
}
