package jsonguard

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/errandhq/errand"
)

// reference is what encoding/json's tokenizer says of a document errand's
// rules care about.
type reference struct {
	valid     bool // json.Valid
	depth     int  // deepest nesting
	duplicate bool // a name twice in one object (names as encoding/json decodes them)
	overflow  bool // a number beyond float64
}

func refer(b []byte) reference {
	r := reference{valid: json.Valid(b)}
	if !r.valid {
		return r
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		r.overflow = true
	}
	type level struct {
		object, wantName bool
		names            map[string]bool
	}
	var stack []level
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return r
		}
		top := len(stack) - 1
		isName := top >= 0 && stack[top].object && stack[top].wantName
		if top >= 0 && stack[top].object {
			stack[top].wantName = !stack[top].wantName
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				stack = append(stack, level{object: tok == '{', wantName: true, names: map[string]bool{}})
				r.depth = max(r.depth, len(stack))
			default:
				stack = stack[:top]
				if len(stack) > 0 && stack[len(stack)-1].object {
					// the container was a member's value: the next token is a name
					stack[len(stack)-1].wantName = true
				}
			}
			if tok == '{' || tok == '[' {
				continue
			}
		case string:
			if isName {
				if stack[top].names[tok] {
					r.duplicate = true
				}
				stack[top].names[tok] = true
			}
		}
	}
}

// surrogateEscape finds a \u escape of a surrogate (paired or not).
var surrogateEscape = regexp.MustCompile(`\\u[dD][89abAB89a-fA-F]`)

// FuzzCheck compares Check with encoding/json: they agree on what is JSON,
// and every document Check refuses that encoding/json accepts breaks one of
// errand's rules, which encoding/json's own reading confirms.
func FuzzCheck(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.json")
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{"a":1,"a":2}`, `"\ud800"`, `1e400`, nest(MaxDepth), nest(MaxDepth + 1), `{"a":{"b":1},"b":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := Check(b, nil)
		r := refer(b)
		code := errand.ErrorCode(err)
		switch {
		case err == nil:
			if !r.valid || !utf8.Valid(b) || r.depth > MaxDepth || r.duplicate || r.overflow {
				t.Fatalf("Check(%q) = nil, but encoding/json says %+v (utf8 %v)", b, r, utf8.Valid(b))
			}
		case !r.valid:
			if code != errand.EMALFORMED {
				t.Fatalf("Check(%q) = %v, want malformed_json: encoding/json refuses it", b, err)
			}
		case code == errand.EMALFORMED:
			if utf8.Valid(b) && r.depth <= MaxDepth {
				t.Fatalf("Check(%q) = %v, but encoding/json accepts it, it is UTF-8 and %d deep", b, err, r.depth)
			}
		case code == errand.EVALIDATION:
			if !r.duplicate && !r.overflow && !surrogateEscape.Match(b) {
				t.Fatalf("Check(%q) = %v, but encoding/json finds no duplicate, overflow or surrogate", b, err)
			}
		default:
			t.Fatalf("Check(%q) = %v: an unexpected code", b, err)
		}
		var e *errand.Error
		if err != nil && (!errors.As(err, &e) || len(e.Fields) != 1 || !utf8.ValidString(e.Fields[0].Pointer)) {
			t.Fatalf("Check(%q) = %#v: want one field with a UTF-8 pointer", b, err)
		}
	})
}

// BenchmarkCheck measures Check beside what encoding/json spends on the same
// document (json.Valid, and decoding into a value), on 1 KB and 1 MB inputs.
func BenchmarkCheck(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 20} {
		doc := sample(size)
		name := "1KB"
		if size > 1<<10 {
			name = "1MB"
		}
		b.Run(name+"/jsonguard", func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if err := Check(doc, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/jsonguard-shape", func(b *testing.B) {
			body := append(append([]byte(`{"operation":"x","metadata":{"a":"b"},"input":`), doc...), '}')
			s := For[request]()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := Check(body, s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/json.Valid", func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				json.Valid(doc)
			}
		})
		b.Run(name+"/json.Decode", func(b *testing.B) {
			body := append(append([]byte(`{"operation":"x","metadata":{"a":"b"},"input":`), doc...), '}')
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var v request
				dec := json.NewDecoder(bytes.NewReader(body))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&v); err != nil && err != io.EOF {
					b.Fatal(err)
				}
			}
		})
	}
}

// sample is a job input of about n bytes: objects of mixed values, some text
// outside ASCII.
func sample(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"type":"monthly","rows":[`)
	for i := 0; sb.Len() < n-120; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"id":12345,"name":"Müller & Søn – invoice","amount":-1234.56,"rate":1.5e-3,"paid":true,"note":null,"tags":["a","b\n"]}`)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}
