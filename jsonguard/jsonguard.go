// Package jsonguard checks JSON documents before errand decodes or stores them,
// in one pass over the bytes: the syntax of RFC 8259, nesting no deeper than
// MaxDepth, UTF-8 (and no lone surrogate escapes), no member name twice in one
// object, and no number beyond float64's range. encoding/json accepts all of
// these; errand stores some JSON as it came (job input, results, event data), so
// what one client sent must be what every other client reads back.
//
// Given the Shape of the Go value a document decodes into, Check also refuses
// member names that are not exactly a struct field's (encoding/json matches
// {"OPERATION":…} to the field operation) and the NUL character in strings that
// become text columns (PostgreSQL cannot store it).
package jsonguard

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/errandhq/errand"
)

// MaxDepth is the deepest nesting of arrays and objects Check accepts.
const MaxDepth = 64

// linearNames is how many member names an object holds before duplicates are
// looked up in a map instead of compared one by one.
const linearNames = 16

// Check returns nil when b is one JSON value errand accepts, else an
// *errand.Error: malformed_json for what is not valid JSON text (syntax, UTF-8,
// nesting), validation_failed for valid JSON errand refuses (duplicate names,
// numbers out of range, unknown or case-folded field names, NUL in a text field),
// pointing at the value at fault. s is what b decodes into; nil accepts any value.
func Check(b []byte, s *Shape) error {
	c := checkers.Get().(*checker)
	defer c.release()
	c.b = b
	c.skipSpace()
	if err := c.value(s); err != nil {
		return err
	}
	c.skipSpace()
	if c.i < len(c.b) {
		return c.malformed("data after the JSON value")
	}
	return c.refused
}

// checkers keep their stacks between documents: a Check allocates nothing.
var checkers = sync.Pool{New: func() any {
	c := &checker{}
	c.frames = c.stack[:0]
	return c
}}

func (c *checker) release() {
	names := c.names[:0]
	if cap(names) > 1024 {
		names = nil // a huge object's: let it go
	}
	clear(names[:cap(names)]) // no hold on the document
	*c = checker{names: names}
	c.frames = c.stack[:0]
	checkers.Put(c)
}

// Valid reports whether Check(b, nil) accepts b.
func Valid(b []byte) bool { return Check(b, nil) == nil }

// betweenMembers is a frame's index while an object's member name is read.
const betweenMembers = -2

// checker is the state of one Check.
type checker struct {
	b      []byte
	i      int
	frames []frame
	stack  [16]frame // frames' first backing array: most documents fit in it
	names  [][]byte  // the names seen in the open objects, innermost last
	// refused is the first rule the document breaks (see invalid).
	refused error
}

// frame is one open array or object.
type frame struct {
	key   []byte              // the member being read, as written (escapes and all)
	index int                 // the element being read; -1 in an object (betweenMembers while reading a name)
	names int                 // where this object's names start in checker.names
	seen  map[string]struct{} // the names, once there are more than linearNames
}

func (c *checker) value(s *Shape) error {
	if c.i >= len(c.b) {
		return c.truncated()
	}
	switch ch := c.b[c.i]; {
	case ch == '{':
		return c.object(s)
	case ch == '[':
		return c.array(s)
	case ch == '"':
		_, _, nul, err := c.str()
		if err == nil && nul && s.text() {
			c.invalid("must not contain the NUL character (\\u0000)")
		}
		return err
	case ch == '-' || ('0' <= ch && ch <= '9'):
		return c.number()
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	}
	return c.unexpected("where a value should be")
}

func (c *checker) push(index int) error {
	if len(c.frames) >= MaxDepth {
		return c.malformed(fmt.Sprintf("nested deeper than %d arrays and objects", MaxDepth))
	}
	c.frames = append(c.frames, frame{index: index, names: len(c.names)})
	return nil
}

func (c *checker) pop() {
	f := &c.frames[len(c.frames)-1]
	c.names = c.names[:f.names]
	c.frames = c.frames[:len(c.frames)-1]
}

func (c *checker) array(s *Shape) error {
	if err := c.push(0); err != nil {
		return err
	}
	c.i++ // [
	c.skipSpace()
	if c.peek() == ']' {
		c.i++
		c.pop()
		return nil
	}
	elem := s.element()
	for n := 0; ; n++ {
		c.frames[len(c.frames)-1].index = n
		c.skipSpace()
		if err := c.value(elem); err != nil {
			return err
		}
		c.skipSpace()
		switch c.peek() {
		case ',':
			c.i++
		case ']':
			c.i++
			c.pop()
			return nil
		default:
			return c.unexpected("after an array element")
		}
	}
}

func (c *checker) object(s *Shape) error {
	if err := c.push(-1); err != nil {
		return err
	}
	c.i++ // {
	c.skipSpace()
	if c.peek() == '}' {
		c.i++
		c.pop()
		return nil
	}
	for {
		c.skipSpace()
		fi := len(c.frames) - 1
		c.frames[fi].index = betweenMembers
		if c.peek() != '"' {
			return c.unexpected("where a member name should be")
		}
		raw, esc, nul, err := c.str()
		if err != nil {
			return err
		}
		c.frames[fi].key, c.frames[fi].index = raw, -1
		name := raw
		if esc {
			name = unescape(raw)
		}
		if c.repeated(fi, name) {
			c.invalid("the member name appears twice in this object")
		}
		ms := c.member(s, name, nul)
		c.skipSpace()
		if c.peek() != ':' {
			return c.unexpected("after a member name")
		}
		c.i++
		c.skipSpace()
		if err := c.value(ms); err != nil {
			return err
		}
		c.skipSpace()
		switch c.peek() {
		case ',':
			c.i++
		case '}':
			c.i++
			c.pop()
			return nil
		default:
			return c.unexpected("after an object member")
		}
	}
}

// member is the shape of the value of the member called name in an object of
// shape s; a name s does not have is refused.
func (c *checker) member(s *Shape, name []byte, nul bool) *Shape {
	switch {
	case s == nil:
		return nil
	case s.kind == kindMap:
		if nul && s.nul == nulRefused {
			c.invalid("names must not contain the NUL character (\\u0000)")
		}
		return s.elem
	case s.kind != kindStruct:
		return nil // encoding/json reports the wrong type
	}
	if f, ok := s.fields[string(name)]; ok {
		return f
	}
	for _, known := range s.names {
		if bytes.EqualFold(name, []byte(known)) {
			c.invalid(fmt.Sprintf("unknown field: names are case-sensitive; did you mean %q?", known))
			return nil
		}
	}
	c.invalid("unknown field")
	return nil
}

// repeated records name in the object of frame fi and reports whether it was
// there already.
func (c *checker) repeated(fi int, name []byte) bool {
	f := &c.frames[fi]
	if f.seen != nil {
		if _, ok := f.seen[string(name)]; ok {
			return true
		}
		f.seen[string(name)] = struct{}{}
		return false
	}
	mine := c.names[f.names:]
	for _, n := range mine {
		if bytes.Equal(n, name) {
			return true
		}
	}
	c.names = append(c.names, name)
	if len(mine)+1 > linearNames {
		f.seen = make(map[string]struct{}, 4*linearNames)
		for _, n := range c.names[f.names:] {
			f.seen[string(n)] = struct{}{}
		}
		c.names = c.names[:f.names]
	}
	return false
}

// plain marks the bytes a string holds as they are: not a quote, a backslash,
// a control character or the start of a multi-byte UTF-8 sequence.
var plain = func() (t [256]bool) {
	for b := 0x20; b < 0x80; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// str reads a string starting at its quote. It returns what is between the
// quotes as written, whether that holds escapes, and whether it holds an
// escaped NUL.
func (c *checker) str() (raw []byte, esc, nul bool, err error) {
	c.i++ // "
	start := c.i
	b := c.b
	for {
		for c.i < len(b) && plain[b[c.i]] {
			c.i++
		}
		if c.i >= len(b) {
			return nil, false, false, c.truncated()
		}
		switch ch := b[c.i]; {
		case ch == '"':
			raw = b[start:c.i]
			c.i++
			return raw, esc, nul, nil
		case ch == '\\':
			esc = true
			z, err := c.escape()
			if err != nil {
				return nil, false, false, err
			}
			nul = nul || z
		case ch < 0x20:
			return nil, false, false, c.malformed("a control character in a string must be escaped")
		default:
			r, size := utf8.DecodeRune(b[c.i:])
			if r == utf8.RuneError && size <= 1 {
				return nil, false, false, c.malformed("a string is not valid UTF-8")
			}
			c.i += size
		}
	}
}

// escape reads one escape sequence (c.i at its backslash); zero reports \u0000.
func (c *checker) escape() (zero bool, err error) {
	if c.i+1 >= len(c.b) {
		return false, c.truncated()
	}
	switch c.b[c.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		c.i += 2
		return false, nil
	case 'u':
	default:
		c.i++
		return false, c.malformed(fmt.Sprintf("%s is not an escape sequence", c.char()))
	}
	r, ok := hex4(c.b, c.i+2)
	if !ok {
		return false, c.malformed("\\u must be followed by four hexadecimal digits")
	}
	c.i += 6
	switch {
	case r >= 0xDC00 && r <= 0xDFFF:
		c.invalid("a string holds a lone surrogate escape (\\u" + strconv.FormatUint(uint64(r), 16) + ")")
	case r >= 0xD800 && r <= 0xDBFF:
		lo, ok := rune(0), c.i+1 < len(c.b) && c.b[c.i] == '\\' && c.b[c.i+1] == 'u'
		if ok {
			lo, ok = hex4(c.b, c.i+2)
		}
		if !ok || lo < 0xDC00 || lo > 0xDFFF {
			c.invalid("a string holds a lone surrogate escape (\\u" + strconv.FormatUint(uint64(r), 16) + ")")
		} else {
			c.i += 6
		}
	}
	return r == 0, nil
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, ch := range b[at : at+4] {
		switch {
		case '0' <= ch && ch <= '9':
			r = r<<4 | rune(ch-'0')
		case 'a' <= ch && ch <= 'f':
			r = r<<4 | rune(ch-'a'+10)
		case 'A' <= ch && ch <= 'F':
			r = r<<4 | rune(ch-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// number reads a number; one written with an exponent, or long enough to pass
// float64's range, is parsed to check that it does not.
func (c *checker) number() error {
	start, b := c.i, c.b
	if b[c.i] == '-' {
		c.i++
	}
	switch {
	case c.i < len(b) && b[c.i] == '0':
		c.i++
	case c.i < len(b) && '1' <= b[c.i] && b[c.i] <= '9':
		c.digits()
	default:
		return c.malformed("a number must have digits after '-'")
	}
	if c.i < len(b) && b[c.i] == '.' {
		c.i++
		if c.digits() == 0 {
			return c.malformed("a number must have digits after '.'")
		}
	}
	exp := false
	if c.i < len(b) && (b[c.i] == 'e' || b[c.i] == 'E') {
		exp = true
		c.i++
		if c.i < len(b) && (b[c.i] == '+' || b[c.i] == '-') {
			c.i++
		}
		if c.digits() == 0 {
			return c.malformed("a number must have digits in its exponent")
		}
	}
	if exp || c.i-start > 300 {
		if _, err := strconv.ParseFloat(string(b[start:c.i]), 64); err != nil {
			end := c.i
			c.i = start
			c.invalid("the number is beyond the range of a 64-bit float (±1.8e308)")
			c.i = end
		}
	}
	return nil
}

func (c *checker) digits() int {
	n := 0
	for c.i < len(c.b) && '0' <= c.b[c.i] && c.b[c.i] <= '9' {
		c.i++
		n++
	}
	return n
}

func (c *checker) literal(word string) error {
	if !bytes.HasPrefix(c.b[c.i:], []byte(word)) {
		return c.unexpected("where a value should be")
	}
	c.i += len(word)
	return nil
}

func (c *checker) skipSpace() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

func (c *checker) peek() byte {
	if c.i < len(c.b) {
		return c.b[c.i]
	}
	return 0
}

// char describes the byte at c.i for an error message.
func (c *checker) char() string {
	if c.i >= len(c.b) {
		return "the end of the document"
	}
	ch := c.b[c.i]
	if ch >= 0x20 && ch < 0x7f {
		return strconv.QuoteRune(rune(ch))
	}
	return fmt.Sprintf("byte 0x%02x", ch)
}

// unexpected is the error for the byte at c.i, which has no place here.
func (c *checker) unexpected(where string) error {
	if c.i >= len(c.b) {
		return c.truncated()
	}
	return c.malformed("unexpected " + c.char() + " " + where)
}

func (c *checker) truncated() error {
	return c.fail(errand.EMALFORMED, "the body ends in the middle of a JSON value")
}

func (c *checker) malformed(msg string) error {
	return c.fail(errand.EMALFORMED, "the body is not valid JSON: "+msg)
}

// invalid records the first rule a well-formed document breaks; reading goes
// on, so that a document that is not JSON at all is called malformed.
func (c *checker) invalid(msg string) {
	if c.refused == nil {
		c.refused = c.fail(errand.EVALIDATION, msg)
	}
}

// fail is the error at c.i, pointing at the value being read.
func (c *checker) fail(code, msg string) error {
	e := &errand.Error{Code: code, Message: fmt.Sprintf("%s (at byte %d)", msg, c.i)}
	e.Fields = []errand.FieldError{{Pointer: c.pointer(), Message: msg}}
	return e
}

// pointer is the JSON pointer (RFC 6901) of the value being read.
func (c *checker) pointer() string {
	var sb strings.Builder
	for _, f := range c.frames {
		if f.index == betweenMembers {
			break // the object itself: no member is being read
		}
		sb.WriteByte('/')
		if f.index >= 0 {
			sb.WriteString(strconv.Itoa(f.index))
			continue
		}
		name := f.key
		if bytes.IndexByte(name, '\\') >= 0 {
			name = unescape(name)
		}
		sb.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(strings.ToValidUTF8(string(name), "\uFFFD")))
	}
	return sb.String()
}

// unescape decodes the escapes of a string Check has read.
func unescape(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			out = append(out, raw[i])
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, _ := hex4(raw, i+1)
			i += 4
			if r >= 0xD800 && r <= 0xDBFF && i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				lo, _ := hex4(raw, i+3)
				r = (r-0xD800)<<10 | (lo - 0xDC00) + 0x10000
				i += 6
			}
			out = utf8.AppendRune(out, r)
		default: // " \ /
			out = append(out, raw[i])
		}
	}
	return out
}
