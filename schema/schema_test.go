package schema

import (
	"errors"
	"strings"
	"testing"

	"github.com/errandhq/errand"
)

// TestCompileErrors: a schema that does not compile says where in it the
// fault is, so config can name the key and its line.
func TestCompileErrors(t *testing.T) {
	for _, c := range []struct{ schema, path, msg string }{
		{`{"type":"objectx"}`, "/type", "value must be one of"},
		{`{"properties":{"a":{"minimum":"1"}}}`, "/properties/a/minimum", "got string, want number"},
		{`{"properties":{"a":{"$ref":"#/$defs/b"}}}`, "/properties/a/$ref", `"#/$defs/b" does not resolve`},
		{`{"prefixItems":[{"$ref":"other.json"}],"type":"array"}`, "/prefixItems/0/$ref", "points outside the schema"},
		{`{"$ref":"#/$defs/x","$defs":{"x":{"$ref":"file:///etc/passwd"}}}`, "/$defs/x/$ref", "points outside the schema"},
	} {
		_, err := Compile("t", []byte(c.schema))
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("Compile(%s) = %v, want a *schema.Error", c.schema, err)
			continue
		}
		if c.path != "" && pointer(se.Path) != c.path || !strings.Contains(se.Message, c.msg) {
			t.Errorf("Compile(%s) = at %q: %s; want at %q: …%s…", c.schema, pointer(se.Path), se.Message, c.path, c.msg)
		}
	}
}

// TestCheckWithheld: errors about a document others will read do not quote
// its values.
func TestCheckWithheld(t *testing.T) {
	s, err := Compile("t", []byte(`{"type":"object","properties":{"u":{"type":"string","pattern":"^/"},
		"e":{"type":"string","format":"email"},"n":{"type":"number","minimum":10}}}`))
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte(`{"u":"secret-path","e":"secret-mail","n":3.25}`)
	err = s.CheckWithheld(doc, errand.ERESULTINVALID, "bad result")
	var e *errand.Error
	if !errors.As(err, &e) || e.Code != errand.ERESULTINVALID || len(e.Fields) != 2 {
		t.Fatalf("CheckWithheld = %v, want 2 field errors (format is an annotation in 2020-12)", err)
	}
	for _, f := range e.Fields {
		if strings.Contains(f.Message, "secret") || strings.Contains(f.Message, "3.25") {
			t.Errorf("%s: %q quotes the document", f.Pointer, f.Message)
		}
	}
	if err := s.Validate(doc); !strings.Contains(errand.ErrorMessage(err)+fieldText(err), "secret-path") {
		t.Errorf("Validate (for the document's own author) = %v, want the value quoted", err)
	}
}

func fieldText(err error) string {
	var e *errand.Error
	errors.As(err, &e)
	var b strings.Builder
	for _, f := range e.Fields {
		b.WriteString(f.Message)
	}
	return b.String()
}
