package jsonguard

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/errandhq/errand"
)

func nest(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

func TestCheckAccepts(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`{}`, `[]`, `""`, `0`, `-0`, `1.5`, `-2.25e-10`, `1E+308`, `1e-400`, `true`, `false`, `null`,
		` {"a" : [ 1 , 2 ] } `, `{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`,
		`"\"\\\/\b\f\n\r\t"`, `"\u00e9\ud83d\ude00"`, "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
		`"\u0000"`, nest(MaxDepth), manyNames(200, ""),
	} {
		if err := Check([]byte(doc), nil); err != nil {
			t.Errorf("Check(%.60q) = %v, want nil", doc, err)
		}
		if !json.Valid([]byte(doc)) {
			t.Errorf("encoding/json refuses %.60q: the test is wrong", doc)
		}
	}
}

// manyNames is an object with n distinct names, then extra.
func manyNames(n int, extra string) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676)) + `":1`)
	}
	sb.WriteString(extra)
	sb.WriteByte('}')
	return sb.String()
}

func TestCheckRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc, code, pointer string
	}{
		{`{`, errand.EMALFORMED, ""},
		{`[1,]`, errand.EMALFORMED, "/1"},
		{`{"a":1,}`, errand.EMALFORMED, ""},
		{`01`, errand.EMALFORMED, ""},
		{`1.`, errand.EMALFORMED, ""},
		{`-`, errand.EMALFORMED, ""},
		{`1 2`, errand.EMALFORMED, ""},
		{`"\x"`, errand.EMALFORMED, ""},
		{`"\u12"`, errand.EMALFORMED, ""},
		{"\"a\tb\"", errand.EMALFORMED, ""},
		{"\xef\xbb\xbf{}", errand.EMALFORMED, ""},
		{"{\"a\":\"\xff\"}", errand.EMALFORMED, "/a"},
		{"[\"\xc0\xaf\"]", errand.EMALFORMED, "/0"},     // overlong
		{"\"\xed\xa0\x80\"", errand.EMALFORMED, ""},     // a surrogate in UTF-8
		{"{\"\xff\":1}", errand.EMALFORMED, ""},         // in a name
		{nest(MaxDepth + 1), errand.EMALFORMED, "/0/0"}, // pointer is cut in the check below
		{nest(9000), errand.EMALFORMED, "/0"},
		{`{"a":1,"a":2}`, errand.EVALIDATION, "/a"},
		{`{"a":1,"\u0061":2}`, errand.EVALIDATION, "/a"},
		{`{"x":{"a":1,"b":2,"a":3}}`, errand.EVALIDATION, "/x/a"},
		{manyNames(10, `,"kaaa":2`), errand.EVALIDATION, "/kaaa"},
		{`1e999999`, errand.EVALIDATION, ""},
		{`{"n":[0,-1e400]}`, errand.EVALIDATION, "/n/1"},
		{`"\ud800"`, errand.EVALIDATION, ""},
		{`"\udc00"`, errand.EVALIDATION, ""},
		{`["\ud800\u0041"]`, errand.EVALIDATION, "/0"},
		{`{"a/b~":"\udfff"}`, errand.EVALIDATION, "/a~1b~0"},
	} {
		err := Check([]byte(tc.doc), nil)
		e, ok := err.(*errand.Error)
		if !ok {
			t.Errorf("Check(%.60q) = %v, want a %s error", tc.doc, err, tc.code)
			continue
		}
		if e.Code != tc.code || len(e.Fields) != 1 || !strings.HasPrefix(e.Fields[0].Pointer, tc.pointer) {
			t.Errorf("Check(%.60q) = %s %+v, want %s at %q", tc.doc, e.Code, e.Fields, tc.code, tc.pointer)
		}
	}
}

func TestCheckDuplicateAfterMapSwitch(t *testing.T) {
	t.Parallel()
	// the first name again, after the object switched to a map of names
	doc := manyNames(linearNames+5, `,"kaaa":2`)
	if err := Check([]byte(doc), nil); errand.ErrorCode(err) != errand.EVALIDATION {
		t.Errorf("Check(a duplicate after %d names) = %v, want validation_failed", linearNames+5, err)
	}
	// names of a closed inner object do not count in the outer one
	if err := Check([]byte(`{"o":`+manyNames(linearNames+5, "")+`,"kaaa":1,"kbaa":2}`), nil); err != nil {
		t.Errorf("Check(inner names reused outside) = %v, want nil", err)
	}
}

type item struct {
	Name string `json:"name"`
	Bare string
}

type embedded struct {
	Key   string `json:"key"`
	Shade string `json:"operation"` // hidden by the outer field of that name
}

type request struct {
	embedded
	Operation string            `json:"operation"`
	Input     json.RawMessage   `json:"input"`
	Items     []item            `json:"items"`
	Tags      map[string]string `json:"tags"`
	Meta      map[string]string `json:"metadata" nul:"allow"`
	Next      *request          `json:"next"`
	Skipped   string            `json:"-"`
	Count     *int              `json:"count"`
}

func TestCheckShape(t *testing.T) {
	t.Parallel()
	s := For[request]()
	for _, tc := range []struct {
		doc, code, pointer, message string
	}{
		{`{"operation":"x","key":"k","input":{"OPERATION":"\u0000"},"metadata":{"a\u0000":"\u0000"},"items":[{"name":"n","Bare":"b"}],"count":3}`, "", "", ""},
		{`{"next":{"next":{"operation":"deep"}}}`, "", "", ""},
		{`{"items":{"name":1}}`, "", "", ""}, // the wrong type is encoding/json's to report
		{`{"OPERATION":"x"}`, errand.EVALIDATION, "/OPERATION", `did you mean "operation"`},
		{`{"Operation":"x"}`, errand.EVALIDATION, "/Operation", `did you mean "operation"`},
		{`{"items":[{"bare":"x"}]}`, errand.EVALIDATION, "/items/0/bare", `did you mean "Bare"`},
		{`{"nope":1}`, errand.EVALIDATION, "/nope", "unknown field"},
		{`{"-":1}`, errand.EVALIDATION, "/-", "unknown field"},
		{`{"next":{"Key":"k"}}`, errand.EVALIDATION, "/next/Key", `did you mean "key"`},
		{`{"operation":"a\u0000b"}`, errand.EVALIDATION, "/operation", "NUL"},
		{`{"key":"\u0000"}`, errand.EVALIDATION, "/key", "NUL"},
		{`{"items":[{"name":"ok"},{"name":"\u0000"}]}`, errand.EVALIDATION, "/items/1/name", "NUL"},
		{`{"tags":{"a":"\u0000"}}`, errand.EVALIDATION, "/tags/a", "NUL"},
		{`{"tags":{"a\u0000":"b"}}`, errand.EVALIDATION, "/tags/a\x00", "NUL"},
	} {
		err := Check([]byte(tc.doc), s)
		if tc.code == "" {
			if err != nil {
				t.Errorf("Check(%s) = %v, want nil", tc.doc, err)
			}
			continue
		}
		e, ok := err.(*errand.Error)
		if !ok || e.Code != tc.code || len(e.Fields) != 1 || e.Fields[0].Pointer != tc.pointer ||
			!strings.Contains(e.Fields[0].Message, tc.message) {
			t.Errorf("Check(%s) = %#v, want %s at %q saying %q", tc.doc, err, tc.code, tc.pointer, tc.message)
		}
	}
}

// TestShapeAgreesWithEncodingJSON: what the shape accepts, encoding/json
// decodes into the type with DisallowUnknownFields, to the same fields.
func TestShapeAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	doc := `{"operation":"op","key":"k","items":[{"name":"a","Bare":"b"}],"tags":{"t":"1"},"metadata":{"m":"2"},"next":{"operation":"n"},"count":1}`
	if err := Check([]byte(doc), For[request]()); err != nil {
		t.Fatalf("Check = %v", err)
	}
	var v request
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if v.Operation != "op" || v.Key != "k" || v.Shade != "" || v.Items[0].Bare != "b" || v.Next.Operation != "n" {
		t.Errorf("decoded %+v", v)
	}
}
