package spec

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"time"
)

// schema is a JSON Schema (draft 2020-12) as the documents hold it; encoding/json
// writes its keys sorted, so documents come out the same every time.
type schema = map[string]any

// ref is a $ref to a schema of the document's components.
func ref(name string) schema { return schema{"$ref": "#/components/schemas/" + name} }

func str(desc string) schema { return schema{"type": "string", "description": desc} }

func integer(desc string) schema { return schema{"type": "integer", "description": desc} }

func object(desc string, props schema, required ...string) schema {
	s := schema{"type": "object", "properties": props, "additionalProperties": false}
	if desc != "" {
		s["description"] = desc
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func arrayOf(items schema) schema { return schema{"type": "array", "items": items} }

func nullable(s schema) schema { return schema{"anyOf": []any{s, schema{"type": "null"}}} }

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage(nil))
)

// reflectSchema describes the JSON encoding/json writes for a value of t:
// fields by their json tags, a field without omitempty required, a pointer
// nullable, time.Time an RFC 3339 string, json.RawMessage any JSON. Named
// types listed in names become $refs to those components. The wire types of
// errand's domain are described this way, so the documents follow them.
func reflectSchema(t reflect.Type, names map[reflect.Type]string) schema {
	if n, ok := names[t]; ok {
		return ref(n)
	}
	switch {
	case t == timeType:
		return schema{"type": "string", "format": "date-time"}
	case t == rawType:
		return schema{}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return nullable(reflectSchema(t.Elem(), names))
	case reflect.String:
		return schema{"type": "string"}
	case reflect.Bool:
		return schema{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return schema{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return schema{"type": "number"}
	case reflect.Slice:
		return arrayOf(reflectSchema(t.Elem(), names))
	case reflect.Map:
		return schema{"type": "object", "additionalProperties": reflectSchema(t.Elem(), names)}
	case reflect.Struct:
		return reflectStruct(t, names)
	}
	return schema{}
}

func reflectStruct(t reflect.Type, names map[reflect.Type]string) schema {
	props := schema{}
	var required []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && name == "" {
			inner := reflectStruct(f.Type, names)
			for k, v := range inner["properties"].(schema) {
				props[k] = v
			}
			if r, ok := inner["required"].([]string); ok {
				required = append(required, r...)
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = reflectSchema(f.Type, names)
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	sort.Strings(required)
	s := schema{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// describe adds descriptions to a reflected object's properties.
func describe(s schema, desc string, props map[string]string) schema {
	if desc != "" {
		s["description"] = desc
	}
	ps := s["properties"].(schema)
	for k, d := range props {
		if p, ok := ps[k].(schema); ok {
			c := schema{}
			for kk, vv := range p {
				c[kk] = vv
			}
			c["description"] = d
			ps[k] = c
		}
	}
	return s
}
