package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Source says where configuration comes from.
type Source struct {
	// File is the YAML file; "" reads none.
	File string
	// YAML is a document used when File is empty (the demo's, the benchmarks').
	YAML []byte
	// Getenv reads the environment: each key path has a variable ERRAND_<PATH>,
	// upper case with "__" between levels. nil reads none.
	Getenv func(string) string
	// Flags are key paths (like "listen" or "http.max_wait") set on the command line.
	Flags map[string]string
}

// Load reads, overrides, defaults and validates the configuration.
func Load(src Source) (*Config, error) {
	var root yaml.Node
	b := src.YAML
	if src.File != "" {
		var err error
		if b, err = os.ReadFile(src.File); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	if len(b) > 0 {
		if err := yaml.Unmarshal(b, &root); err != nil {
			return nil, fmt.Errorf("config %s: %s", src.File, cleanYAMLError(err))
		}
	}
	doc, err := document(&root)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", src.File, err)
	}
	if src.Getenv != nil {
		// ERRAND_DATABASE_URL is the conventional name for the store of a
		// deployment; ERRAND_STORE, when also set, wins.
		if v := src.Getenv("ERRAND_DATABASE_URL"); v != "" {
			if err := override(doc, []string{"store"}, v, "ERRAND_DATABASE_URL"); err != nil {
				return nil, err
			}
		}
		for _, path := range scalarPaths(reflect.TypeOf(Config{}), nil) {
			name := EnvName(path)
			if v := src.Getenv(name); v != "" {
				if err := override(doc, path, v, name); err != nil {
					return nil, err
				}
			}
		}
	}
	keys := make([]string, 0, len(src.Flags))
	for k := range src.Flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := override(doc, strings.Split(k, "."), src.Flags[k], "--"+k); err != nil {
			return nil, fmt.Errorf("flag --%s: %w", k, err)
		}
	}
	c, err := decode(doc, src.File)
	if err != nil {
		return nil, err
	}
	c.applyDefaults()
	if err := c.validate(&lines{doc: doc, file: src.File}); err != nil {
		return nil, err
	}
	return c, nil
}

// document returns the top mapping of root, creating an empty one.
func document(root *yaml.Node) (*yaml.Node, error) {
	if root.Kind == 0 || len(root.Content) == 0 {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the file must be a mapping of keys (listen:, store:, operations: …)", doc.Line)
	}
	return doc, nil
}

// EnvName is the environment variable of a key path: [http max_wait] is
// ERRAND_HTTP__MAX_WAIT.
func EnvName(path []string) string {
	return "ERRAND_" + strings.ToUpper(strings.Join(path, "__"))
}

// scalarPaths lists the key paths of t's scalar fields (maps are left out: their
// keys are names the environment cannot list).
func scalarPaths(t reflect.Type, prefix []string) [][]string {
	var out [][]string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := strings.Split(f.Tag.Get("yaml"), ",")[0]
		path := append(slices.Clone(prefix), key)
		switch f.Type.Kind() {
		case reflect.Struct:
			out = append(out, scalarPaths(f.Type, path)...)
		case reflect.Map, reflect.Interface, reflect.Slice:
		default:
			out = append(out, path)
		}
	}
	return out
}

var errUnknownKey = fmt.Errorf("unknown key")

// override sets the scalar at path to value, checking that path is a key and
// value has its type; origin names the variable or flag in errors.
func override(doc *yaml.Node, path []string, value, origin string) error {
	t, ok := fieldType(reflect.TypeOf(Config{}), path)
	if !ok {
		return errUnknownKey
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: value, LineComment: origin}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		return fmt.Errorf("%s=%q: %s", origin, value, strings.TrimPrefix(cleanYAMLError(err), "line 0: "))
	}
	m := doc
	for i, key := range path {
		var child *yaml.Node
		for k := 0; k+1 < len(m.Content); k += 2 {
			if m.Content[k].Value == key {
				child = m.Content[k+1]
			}
		}
		if i == len(path)-1 {
			if child != nil {
				*child = *n
			} else {
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, n)
			}
			return nil
		}
		if child == nil || child.Kind != yaml.MappingNode {
			child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, child)
		}
		m = child
	}
	return nil
}

// fieldType follows path through the yaml tags of t to a scalar field.
func fieldType(t reflect.Type, path []string) (reflect.Type, bool) {
	for _, key := range path {
		f, ok := field(t, key)
		if !ok {
			return nil, false
		}
		t = f.Type
	}
	return t, t.Kind() != reflect.Struct && t.Kind() != reflect.Map
}

func field(t reflect.Type, key string) (reflect.StructField, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if strings.Split(f.Tag.Get("yaml"), ",")[0] == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func decode(doc *yaml.Node, file string) (*Config, error) {
	if err := checkKeys(doc, reflect.TypeOf(Config{}), ""); err != nil {
		return nil, fmt.Errorf("config%s: %w", where(file), err)
	}
	var c Config
	if err := doc.Decode(&c); err != nil {
		return nil, fmt.Errorf("config%s: %s", where(file), nameKeys(doc, cleanYAMLError(err)))
	}
	return &c, nil
}

var lineRef = regexp.MustCompile(`line (\d+): `)

// nameKeys adds the key path to each "line N: " of a decode error.
func nameKeys(doc *yaml.Node, msg string) string {
	paths := map[string]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for k := 0; k+1 < len(n.Content); k += 2 {
			p := strings.TrimPrefix(path+"."+n.Content[k].Value, ".")
			v := n.Content[k+1]
			// A block mapping starts on its first child's line: let the child name it.
			// On a one-line ({…}) mapping, the enclosing key is the honest name.
			oneLine := v.Kind == yaml.ScalarNode || v.Style&yaml.FlowStyle != 0
			if _, seen := paths[fmt.Sprint(v.Line)]; oneLine && !seen {
				paths[fmt.Sprint(v.Line)] = p
			}
			walk(v, p)
		}
	}
	walk(doc, "")
	return lineRef.ReplaceAllStringFunc(msg, func(s string) string {
		if p, ok := paths[lineRef.FindStringSubmatch(s)[1]]; ok {
			return s + p + ": "
		}
		return s
	})
}

// checkKeys refuses keys that are not fields of t, naming their path and line.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil // a type mismatch is reported by Decode with its line
	}
	for k := 0; k+1 < len(n.Content); k += 2 {
		key, val := n.Content[k], n.Content[k+1]
		p := strings.TrimPrefix(path+"."+key.Value, ".")
		var next reflect.Type
		switch t.Kind() {
		case reflect.Map:
			next = t.Elem()
		case reflect.Struct:
			f, ok := field(t, key.Value)
			if !ok {
				return fmt.Errorf("line %d: unknown key %s", key.Line, p)
			}
			next = f.Type
		default:
			continue
		}
		if next.Kind() == reflect.Interface {
			continue // free-form (input_schema)
		}
		if err := checkKeys(val, next, p); err != nil {
			return err
		}
	}
	return nil
}

func where(file string) string {
	if file == "" {
		return ""
	}
	return " " + file
}

var (
	yamlType       = regexp.MustCompile("cannot unmarshal !!(\\w+) `([^`]*)` into (\\S+)")
	yamlCollection = regexp.MustCompile(`cannot unmarshal !!(seq|map) into (\S+)`)
)

// cleanYAMLError rewrites yaml.v3's messages for people.
func cleanYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	msg = yamlCollection.ReplaceAllStringFunc(msg, func(s string) string {
		m := yamlCollection.FindStringSubmatch(s)
		kind := map[string]string{"seq": "a list", "map": "a mapping"}[m[1]]
		return fmt.Sprintf("must be a %s, not %s", friendlyType(m[2]), kind)
	})
	return yamlType.ReplaceAllStringFunc(msg, func(s string) string {
		m := yamlType.FindStringSubmatch(s)
		return fmt.Sprintf("%q is not a valid %s", m[2], friendlyType(m[3]))
	})
}

func friendlyType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"):
		return "whole number"
	case goType == "bool":
		return "boolean (true or false)"
	case goType == "string":
		return "string"
	}
	return "value here"
}

// lines finds where a key path was set, for validation errors.
type lines struct {
	doc  *yaml.Node
	file string
}

// at returns "line N: path" or "ERRAND_X: path" for a key path.
func (l *lines) at(path ...string) string {
	n := l.doc
	var key *yaml.Node
	for _, p := range path {
		if i, err := strconv.Atoi(p); err == nil && n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
			n, key = n.Content[i], n.Content[i] // a list item: its own line
			continue
		}
		if n == nil || n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for k := 0; k+1 < len(n.Content); k += 2 {
			if n.Content[k].Value == p {
				key, next = n.Content[k], n.Content[k+1]
			}
		}
		n = next
	}
	name := strings.Join(path, ".")
	switch {
	case n != nil && n.LineComment != "" && n.Line == 0:
		return n.LineComment + ": " + name
	case key != nil && key.Line > 0:
		return fmt.Sprintf("line %d: %s", key.Line, name)
	}
	return name
}
