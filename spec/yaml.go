package spec

import (
	"bytes"
	"fmt"
)

// toYAML writes the JSON document doc (as encodeJSON writes it) as
// block-style YAML with the same keys in the same order, in one pass over
// its bytes. A string is written plain when YAML reads it back as the same
// string, else as its JSON literal: YAML's double-quoted style shares JSON's
// escapes.
func toYAML(doc []byte) ([]byte, error) {
	c := &yamlConv{in: doc, out: bytes.NewBuffer(make([]byte, 0, len(doc)))}
	c.skip()
	if c.pos < len(c.in) && c.in[c.pos] == '{' {
		c.object(0, true)
	} else {
		c.value(0)
	}
	if c.err != nil {
		return nil, fmt.Errorf("spec: yaml: %w", c.err)
	}
	return c.out.Bytes(), nil
}

type yamlConv struct {
	in  []byte
	pos int
	out *bytes.Buffer
	err error
}

func (c *yamlConv) skip() {
	for c.pos < len(c.in) && (c.in[c.pos] == ' ' || c.in[c.pos] == '\n' || c.in[c.pos] == '\t' || c.in[c.pos] == '\r') {
		c.pos++
	}
}

func (c *yamlConv) fail(what string) {
	if c.err == nil {
		c.err = fmt.Errorf("%s at byte %d", what, c.pos)
	}
	c.pos = len(c.in)
}

func (c *yamlConv) indent(n int) {
	for i := 0; i < n; i++ {
		c.out.WriteString("  ")
	}
}

// value writes the value at pos after a key's colon or a list's dash:
// scalars and empty containers on the same line, others on the next.
func (c *yamlConv) value(depth int) {
	c.skip()
	if c.pos >= len(c.in) {
		c.fail("unexpected end")
		return
	}
	switch c.in[c.pos] {
	case '{':
		if c.empty('}') {
			c.out.WriteString(" {}\n")
			return
		}
		c.out.WriteByte('\n')
		c.object(depth, false)
	case '[':
		if c.empty(']') {
			c.out.WriteString(" []\n")
			return
		}
		c.out.WriteByte('\n')
		c.array(depth)
	default:
		c.out.WriteByte(' ')
		c.scalar()
		c.out.WriteByte('\n')
	}
}

// empty consumes an empty container ({} or []) when there is one at pos.
func (c *yamlConv) empty(closer byte) bool {
	p := c.pos + 1
	for p < len(c.in) && (c.in[p] == ' ' || c.in[p] == '\n' || c.in[p] == '\t' || c.in[p] == '\r') {
		p++
	}
	if p < len(c.in) && c.in[p] == closer {
		c.pos = p + 1
		return true
	}
	return false
}

// object writes the object at pos, its keys at depth; the first key's
// indentation is already written when inline (a list item, the document).
func (c *yamlConv) object(depth int, inline bool) {
	c.pos++ // {
	for first := true; ; first = false {
		c.skip()
		if c.pos >= len(c.in) {
			c.fail("unexpected end in an object")
			return
		}
		if c.in[c.pos] == '}' {
			c.pos++
			return
		}
		if c.in[c.pos] == ',' {
			c.pos++
			c.skip()
		}
		if !first || !inline {
			c.indent(depth)
		}
		c.str()
		c.skip()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			c.fail("no colon after a key")
			return
		}
		c.out.WriteByte(':')
		c.pos++
		c.value(depth + 1)
	}
}

func (c *yamlConv) array(depth int) {
	c.pos++ // [
	for {
		c.skip()
		if c.pos >= len(c.in) {
			c.fail("unexpected end in an array")
			return
		}
		if c.in[c.pos] == ']' {
			c.pos++
			return
		}
		if c.in[c.pos] == ',' {
			c.pos++
			c.skip()
		}
		c.indent(depth)
		c.out.WriteByte('-')
		if c.pos < len(c.in) && c.in[c.pos] == '{' && !c.peekEmpty() {
			c.out.WriteByte(' ')
			c.object(depth+1, true)
			continue
		}
		c.value(depth + 1)
	}
}

func (c *yamlConv) peekEmpty() bool {
	save := c.pos
	e := c.empty('}')
	c.pos = save
	return e
}

// scalar copies a number, true, false or null, or writes a string.
func (c *yamlConv) scalar() {
	if c.in[c.pos] == '"' {
		c.str()
		return
	}
	start := c.pos
	for c.pos < len(c.in) && c.in[c.pos] != ',' && c.in[c.pos] != '}' && c.in[c.pos] != ']' &&
		c.in[c.pos] != ' ' && c.in[c.pos] != '\n' {
		c.pos++
	}
	c.out.Write(c.in[start:c.pos])
}

// str writes the JSON string at pos: plain when that reads back the same.
func (c *yamlConv) str() {
	start := c.pos
	c.pos++
	escaped := false
	for c.pos < len(c.in) && c.in[c.pos] != '"' {
		if c.in[c.pos] == '\\' {
			escaped = true
			c.pos++
		}
		c.pos++
	}
	if c.pos >= len(c.in) {
		c.fail("unterminated string")
		return
	}
	c.pos++
	lit := c.in[start:c.pos]
	if val := lit[1 : len(lit)-1]; !escaped && plainYAML(val) {
		c.out.Write(val)
		return
	}
	c.out.Write(lit)
}

// plainYAML reports whether s, written bare, reads back as the string s: it
// starts with a letter, '/' or '_', holds only letters, digits, spaces and
// _./()+,;=@- (no ": ", no " #", no ':' or '#' at all), does not end with a
// space and is no word YAML reads as a boolean or null.
func plainYAML(s []byte) bool {
	if len(s) == 0 || s[len(s)-1] == ' ' {
		return false
	}
	if c := s[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '/') {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == ' ' || c == '_' || c == '.' || c == '/' || c == '(' || c == ')' || c == '+' || c == ',' || c == ';' || c == '=' || c == '@' || c == '-':
		default:
			return false
		}
	}
	return len(s) > 5 || !yamlWords[string(s)]
}

// yamlWords are plain-looking words YAML (1.1 or 1.2) reads as something else.
var yamlWords = map[string]bool{"true": true, "false": true, "null": true, "yes": true, "no": true, "on": true, "off": true,
	"y": true, "n": true, "True": true, "False": true, "Null": true, "TRUE": true, "FALSE": true, "NULL": true,
	"Yes": true, "No": true, "On": true, "Off": true, "YES": true, "NO": true, "ON": true, "OFF": true, "Y": true, "N": true}
