package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// toYAML writes the JSON document doc as block-style YAML with the same keys
// in the same order. A string is written plain when YAML reads it back as
// the same string, else double-quoted with JSON's escapes (which YAML's
// double-quoted style shares).
func toYAML(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	v, err := readNode(dec)
	if err != nil {
		return nil, fmt.Errorf("spec: yaml: %w", err)
	}
	var b bytes.Buffer
	writeNode(&b, v, 0, v.isObj) // a document: no newline before its first key
	return b.Bytes(), nil
}

// node is a JSON value that keeps its object's key order.
type node struct {
	keys   []string
	values []*node // an object's values, or an array's items
	array  bool
	scalar any // json.Number, string, bool or nil, when not a container
	isObj  bool
}

func readNode(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &node{array: t == '[', isObj: t == '{'}
		for dec.More() {
			if n.isObj {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
			}
			v, err := readNode(dec)
			if err != nil {
				return nil, err
			}
			n.values = append(n.values, v)
		}
		_, err := dec.Token() // the closing delimiter
		return n, err
	default:
		return &node{scalar: t}, nil
	}
}

func writeNode(b *bytes.Buffer, n *node, indent int, inList bool) {
	pad := strings.Repeat("  ", indent)
	switch {
	case n.isObj && len(n.keys) == 0:
		b.WriteString(" {}\n")
	case n.array && len(n.values) == 0:
		b.WriteString(" []\n")
	case n.isObj:
		if !inList {
			b.WriteByte('\n')
		}
		for i, k := range n.keys {
			if i > 0 || !inList {
				b.WriteString(pad)
			}
			b.WriteString(yamlString(k))
			b.WriteByte(':')
			writeNode(b, n.values[i], indent+1, false)
		}
	case n.array:
		b.WriteByte('\n')
		for _, v := range n.values {
			b.WriteString(pad)
			b.WriteString("-")
			if v.isObj && len(v.keys) > 0 {
				b.WriteByte(' ')
				writeNode(b, v, indent+1, true)
				continue
			}
			writeNode(b, v, indent+1, false)
		}
	default:
		b.WriteByte(' ')
		b.WriteString(yamlScalar(n.scalar))
		b.WriteByte('\n')
	}
}

func yamlScalar(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		if v {
			return "true"
		}
		return "false"
	case json.Number:
		return v.String()
	case string:
		return yamlString(v)
	}
	return fmt.Sprint(v)
}

// plain are strings YAML reads back as themselves when written bare: they
// start with a letter, slash or underscore, hold no ": " or " #", and end
// with neither a space nor a colon.
var plain = regexp.MustCompile(`^[A-Za-z_/][A-Za-z0-9 _./()+,;=@-]*$`)

// special are plain-looking words YAML reads as something else.
var special = map[string]bool{"true": true, "false": true, "null": true, "yes": true, "no": true, "on": true, "off": true,
	"y": true, "n": true, "True": true, "False": true, "Null": true, "TRUE": true, "FALSE": true, "NULL": true,
	"Yes": true, "No": true, "On": true, "Off": true, "YES": true, "NO": true, "ON": true, "OFF": true, "Y": true, "N": true}

func yamlString(s string) string {
	if plain.MatchString(s) && !special[s] && !strings.HasSuffix(s, " ") && !strings.Contains(s, " #") {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
