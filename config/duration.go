package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// UnmarshalYAML reads a duration string such as "90s" or "7d".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration (like 90s, 10m, 2h or 7d)", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		if n.Line == 0 {
			return err
		}
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
