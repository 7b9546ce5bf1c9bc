package bridge

import (
	"fmt"
	"strings"
)

// The placeholders a publish route's to: may name.
const (
	PhChannel   = "channel"   // the channel of a channel event
	PhType      = "type"      // the event's type
	PhOperation = "operation" // the operation of a job event
	PhStream    = "stream"    // the event's stream (a channel, or a job's id)
)

var placeholders = []string{PhChannel, PhType, PhOperation, PhStream}

// Template is a parsed to: address with {placeholders}.
type Template struct {
	raw   string
	parts []part
}

type part struct {
	text string
	ph   bool // text is a placeholder's name
}

// ParseTemplate reads an address with {channel} {type} {operation} {stream}.
func ParseTemplate(s string) (Template, error) {
	t := Template{raw: s}
	rest := s
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		closing := strings.IndexByte(rest, '}')
		if open < 0 {
			if closing >= 0 {
				return t, fmt.Errorf("%q has a '}' without its '{'", s)
			}
			t.parts = append(t.parts, part{text: rest})
			break
		}
		if closing >= 0 && closing < open {
			return t, fmt.Errorf("%q has a '}' without its '{'", s)
		}
		if open > 0 {
			t.parts = append(t.parts, part{text: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return t, fmt.Errorf("%q has a '{' without its '}'", s)
		}
		name := rest[open+1 : open+end]
		if !contains(placeholders, name) {
			return t, fmt.Errorf("{%s} is not a placeholder: use {channel}, {type}, {operation} or {stream}", name)
		}
		t.parts = append(t.parts, part{text: name, ph: true})
		rest = rest[open+end+1:]
	}
	if len(t.parts) == 0 {
		return t, fmt.Errorf("the address is empty")
	}
	return t, nil
}

// Uses reports whether the template names a placeholder.
func (t Template) Uses(name string) bool {
	for _, p := range t.parts {
		if p.ph && p.text == name {
			return true
		}
	}
	return false
}

// String is the template as written.
func (t Template) String() string { return t.raw }

// Render fills the placeholders from vars (by name), each through clean.
func (t Template) Render(vars func(name string) string) string {
	if len(t.parts) == 1 && !t.parts[0].ph {
		return t.parts[0].text
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.ph {
			b.WriteString(vars(p.text))
		} else {
			b.WriteString(p.text)
		}
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
