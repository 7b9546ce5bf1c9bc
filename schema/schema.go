// Package schema compiles and applies JSON Schemas (draft 2020-12 unless the schema
// says otherwise) to the JSON documents clients send: operation inputs and, later,
// channel event data.
package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/errandhq/errand"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// MaxErrors caps how many field errors one validation reports.
const MaxErrors = 20

// Schema is a compiled JSON Schema.
type Schema struct {
	s *jsonschema.Schema
}

// noLoader refuses every $ref to a URL: a schema in config must not read local
// files or reach the network.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("$ref to %q: schemas may only refer to themselves", url)
}

// Compile compiles the schema document raw; name identifies it in errors.
func Compile(name string, raw json.RawMessage) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	loc := "errand:///" + strings.ReplaceAll(name, " ", "_") + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	return &Schema{s: s}, nil
}

var printer = message.NewPrinter(language.English)

// Validate checks doc against the schema. A mismatch is an *errand.Error with code
// validation_failed whose Fields point into doc; malformed JSON is malformed_json.
func (s *Schema) Validate(doc json.RawMessage) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return errand.Errorf(errand.EMALFORMED, "input is not valid JSON: %v", err)
	}
	err = s.s.Validate(v)
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		e := errand.Errorf(errand.EVALIDATION, "input does not match the operation's schema")
		e.Fields = leaves(ve, nil)
		return e
	}
	return err
}

// leaves collects the innermost causes, which say what is actually wrong.
func leaves(ve *jsonschema.ValidationError, out []errand.FieldError) []errand.FieldError {
	if len(ve.Causes) == 0 {
		if len(out) < MaxErrors {
			out = append(out, errand.FieldError{Pointer: pointer(ve.InstanceLocation),
				Message: ve.ErrorKind.LocalizedString(printer)})
		}
		return out
	}
	for _, c := range ve.Causes {
		out = leaves(c, out)
	}
	sort.SliceStable(out, func(i, k int) bool { return out[i].Pointer < out[k].Pointer })
	return out
}

// pointer writes an RFC 6901 JSON Pointer.
func pointer(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1"))
	}
	return b.String()
}
