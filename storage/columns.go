package storage

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/errandhq/errand"
)

// Column encodings both drivers share: times are Unix microseconds (UTC), JSON
// values are stored as bytes, empty values as NULL.

// UnmarshalAll decodes pairs of (JSON column, destination), skipping NULL columns.
func UnmarshalAll(pairs ...any) error {
	for i := 0; i < len(pairs); i += 2 {
		if b := pairs[i].([]byte); len(b) > 0 {
			if err := json.Unmarshal(b, pairs[i+1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// JSONOrNil is v as JSON, or nil (NULL) when v is empty. A value that does
// not encode (a NaN in a Progress) is an error: the caller's write fails,
// rather than storing NULL in its place.
func JSONOrNil(v any) ([]byte, error) {
	switch x := v.(type) {
	case *errand.Problem:
		if x == nil {
			return nil, nil
		}
	case *errand.Progress:
		if x == nil {
			return nil, nil
		}
	case map[string]string:
		if len(x) == 0 {
			return nil, nil
		}
	case []errand.Artifact:
		if len(x) == 0 {
			return nil, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// NullBytes is b, or nil (NULL) when empty.
func NullBytes(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

// NullString is s, or nil (NULL) when empty.
func NullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Micros is t in Unix microseconds.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// MicrosPtr is *t in Unix microseconds, or nil (NULL).
func MicrosPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

// FromMicros is the UTC time of Unix microseconds.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
