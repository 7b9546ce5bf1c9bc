// Package schema compiles and applies JSON Schemas (draft 2020-12 unless the schema
// says otherwise) to JSON documents: operation inputs and results, channel event
// data. A schema that does not compile is an *Error saying where in it the
// problem is, so config can name the key and its line.
package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/errandhq/errand"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
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

// Compile compiles the schema document raw; name identifies it in errors. A
// schema that does not compile is an *Error.
func Compile(name string, raw json.RawMessage) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &Error{Name: name, Message: err.Error()}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	loc := "errand:///" + strings.ReplaceAll(name, " ", "_") + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, &Error{Name: name, Message: err.Error()}
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, explain(name, loc, doc, err)
	}
	return &Schema{s: s}, nil
}

var printer = message.NewPrinter(language.English)

// Validate checks an operation's input against the schema. A mismatch is an
// *errand.Error with code validation_failed whose Fields point into doc;
// malformed JSON is malformed_json.
func (s *Schema) Validate(doc json.RawMessage) error {
	return s.check(doc, errand.EVALIDATION, "input does not match the operation's schema", false)
}

// CheckWithheld checks doc as Validate does, with the error's code and
// message, but its field errors never quote doc's values (a pattern or a
// format that failed is named, the string that failed is not): the error is
// shown to others than doc's author (a worker's result, refused, is a job's
// error that the job's readers see).
func (s *Schema) CheckWithheld(doc json.RawMessage, code, message string) error {
	return s.check(doc, code, message, true)
}

func (s *Schema) check(doc json.RawMessage, code, message string, withhold bool) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return errand.Errorf(errand.EMALFORMED, "not valid JSON: %v", err)
	}
	err = s.s.Validate(v)
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		e := errand.Errorf(code, "%s", message)
		e.Fields = leaves(ve, nil, withhold)
		return e
	}
	return err
}

// leaves collects the innermost causes, which say what is actually wrong.
func leaves(ve *jsonschema.ValidationError, out []errand.FieldError, withhold bool) []errand.FieldError {
	if len(ve.Causes) == 0 {
		if len(out) < MaxErrors {
			msg := ve.ErrorKind.LocalizedString(printer)
			if withhold {
				msg = withheld(ve.ErrorKind, msg)
			}
			out = append(out, errand.FieldError{Pointer: pointer(ve.InstanceLocation), Message: msg})
		}
		return out
	}
	for _, c := range ve.Causes {
		out = leaves(c, out, withhold)
	}
	sort.SliceStable(out, func(i, k int) bool { return out[i].Pointer < out[k].Pointer })
	return out
}

// withheld is msg without the value that failed, for the kinds of error
// that quote it.
func withheld(k jsonschema.ErrorKind, msg string) string {
	switch k := k.(type) {
	case *kind.Pattern:
		return "does not match pattern " + strconv.Quote(k.Want)
	case *kind.Format:
		return "is not a valid " + k.Want
	case *kind.Minimum, *kind.Maximum, *kind.ExclusiveMinimum, *kind.ExclusiveMaximum, *kind.MultipleOf:
		keyword, _, _ := strings.Cut(msg, ":")
		want := msg[strings.LastIndex(msg, "want ")+len("want "):]
		return keyword + " " + want + " not met"
	}
	return msg
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
