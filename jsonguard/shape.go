package jsonguard

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// Shape is what a Go type expects at each place of a JSON document: the exact
// member names of a struct, what a slice's elements or a map's values are, and
// which strings go to text columns. A nil *Shape accepts any value.
type Shape struct {
	kind   kind
	fields map[string]*Shape // a struct's members by their exact JSON names
	names  []string          // the same names, for "did you mean"
	elem   *Shape            // an array's elements, a map's values
	nul    nulPolicy         // a map's names; a text string's content
}

type kind uint8

const (
	kindText   kind = iota + 1 // a Go string: refuses NUL
	kindStruct                 // an object with exactly these member names
	kindMap                    // an object with any member names
	kindArray                  // an array whose elements share one shape
)

type nulPolicy uint8

const (
	nulRefused nulPolicy = iota
	nulAllowed
)

// NulTag is the struct tag that lets a string field (and the strings under it)
// hold NUL: `nul:"allow"` on fields errand keeps inside a JSON document stored
// as bytes (metadata, a worker's error, progress), never in a text column.
const NulTag = "nul"

func (s *Shape) text() bool { return s != nil && s.kind == kindText }

func (s *Shape) element() *Shape {
	if s != nil && s.kind == kindArray {
		return s.elem
	}
	return nil
}

var shapes sync.Map // reflect.Type → *Shape

// For is the shape of values of type T.
func For[T any]() *Shape { return ShapeOf(reflect.TypeFor[T]()) }

// ShapeOf is the shape of values of type t, as encoding/json decodes them.
func ShapeOf(t reflect.Type) *Shape {
	if s, ok := shapes.Load(t); ok {
		return s.(*Shape)
	}
	s := (&builder{building: map[key]*Shape{}}).shape(t, false)
	shapes.Store(t, s)
	return s
}

type key struct {
	t     reflect.Type
	allow bool
}

// builder makes shapes; building holds the structs being made, so a type that
// contains itself refers to its own shape.
type builder struct{ building map[key]*Shape }

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (b *builder) shape(t reflect.Type, allow bool) *Shape {
	if pt := reflect.PointerTo(t); t.Implements(jsonUnmarshaler) || pt.Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || pt.Implements(textUnmarshaler) {
		return nil // it reads itself (json.RawMessage, time.Time)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return b.shape(t.Elem(), allow)
	case reflect.String:
		if allow {
			return nil
		}
		return &Shape{kind: kindText}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil // base64
		}
		if elem := b.shape(t.Elem(), allow); elem != nil {
			return &Shape{kind: kindArray, elem: elem}
		}
	case reflect.Map:
		s := &Shape{kind: kindMap, elem: b.shape(t.Elem(), allow), nul: nulRefused}
		if allow || t.Key().Kind() != reflect.String {
			s.nul = nulAllowed
		}
		if s.elem == nil && s.nul == nulAllowed {
			return nil
		}
		return s
	case reflect.Struct:
		return b.structShape(t, allow)
	}
	return nil
}

func (b *builder) structShape(t reflect.Type, allow bool) *Shape {
	k := key{t, allow}
	if s, ok := b.building[k]; ok {
		return s
	}
	s := &Shape{kind: kindStruct, fields: map[string]*Shape{}}
	b.building[k] = s
	b.addFields(s, t, allow)
	for name := range s.fields {
		s.names = append(s.names, name)
	}
	return s
}

// addFields adds t's fields to s, the promoted fields of embedded structs after
// t's own (which win, as in encoding/json).
func (b *builder) addFields(s *Shape, t reflect.Type, allow bool) {
	var embedded []reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			embedded = append(embedded, f)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, taken := s.fields[name]; !taken {
			s.fields[name] = b.shape(f.Type, allow || f.Tag.Get(NulTag) == "allow")
		}
	}
	for _, f := range embedded {
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		inner := map[string]*Shape{}
		b.addFields(&Shape{fields: inner}, ft, allow || f.Tag.Get(NulTag) == "allow")
		for name, fs := range inner {
			if _, taken := s.fields[name]; !taken {
				s.fields[name] = fs
			}
		}
	}
}
