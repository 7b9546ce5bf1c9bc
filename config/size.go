package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Size is a number of bytes written as a plain number or with a unit: "512MiB",
// "8 MiB", "64KB", "1GiB" (KiB, MiB, GiB, TiB are powers of 1024; KB, MB, GB,
// TB powers of 1000; B is bytes).
type Size int64

// sizeUnits are the units ParseSize knows, longest first.
var sizeUnits = []struct {
	name string
	mult float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseSize reads a size such as "512MiB" or "1048576".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(t, u.name); ok {
			t, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || n*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is not a size (like 512MiB, 64KB or 1048576)", s)
	}
	return int64(n * mult), nil
}

// UnmarshalYAML reads a size.
func (z *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a size (like 512MiB, 64KB or 1048576)", n.Line)
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		if n.Line == 0 {
			return err
		}
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*z = Size(v)
	return nil
}

// String formats the size in the largest binary unit that divides it.
func (z Size) String() string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if z != 0 && int64(z)%u.mult == 0 {
			return strconv.FormatInt(int64(z)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(z), 10)
}

// MarshalYAML writes the size as a string.
func (z Size) MarshalYAML() (any, error) { return z.String(), nil }
