// Package exec is the executable schema gqlgen generates from
// ../schema.graphqls, with the scalars it binds (written by hand).
package exec

import (
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/errandhq/errand"
)

// MarshalJSON writes a JSON value (stored and checked before) as it is; an
// empty one is null.
func MarshalJSON(v json.RawMessage) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		if len(v) == 0 {
			_, _ = io.WriteString(w, "null")
			return
		}
		_, _ = w.Write(v)
	})
}

// UnmarshalJSON reads a JSON argument: from variables (numbers kept as
// written) or a literal in the document.
func UnmarshalJSON(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errand.Errorf(errand.EVALIDATION, "not a JSON value: %v", err)
	}
	return b, nil
}

// MarshalMetadata writes a job's metadata (string keys and values) as a
// JSON object; none is null.
func MarshalMetadata(m map[string]string) graphql.Marshaler {
	if len(m) == 0 {
		return graphql.Null
	}
	b, _ := json.Marshal(m)
	return MarshalJSON(b)
}

// UnmarshalMetadata reads metadata: an object of strings.
func UnmarshalMetadata(v any) (map[string]string, error) {
	obj, ok := v.(map[string]any)
	out := make(map[string]string, len(obj))
	for k, x := range obj {
		s, isString := x.(string)
		if !isString {
			ok = false
			break
		}
		out[k] = s
	}
	if !ok && v != nil {
		return nil, errand.Errorf(errand.EVALIDATION, "metadata must be an object of strings")
	}
	return out, nil
}

// MarshalTime writes a time in RFC 3339 (UTC, with the fraction errand keeps).
func MarshalTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		var buf [40]byte // RFC 3339 with nanoseconds is 30 bytes: no escaping, no allocation
		b := append(buf[:0], '"')
		b = append(t.UTC().AppendFormat(b, time.RFC3339Nano), '"')
		_, _ = w.Write(b)
	})
}

// UnmarshalTime reads an RFC 3339 time.
func UnmarshalTime(v any) (time.Time, error) {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errand.Errorf(errand.EVALIDATION, "%q is not an RFC 3339 time like 2026-12-01T00:00:00Z", errand.Truncate(s, 64))
	}
	return t, nil
}

// MarshalJobStatus writes a status as its enum value (QUEUED).
func MarshalJobStatus(s errand.Status) graphql.Marshaler {
	return graphql.MarshalString(strings.ToUpper(string(s)))
}

// UnmarshalJobStatus reads an enum value (QUEUED) as a status.
func UnmarshalJobStatus(v any) (errand.Status, error) {
	s, ok := v.(string)
	st := errand.Status(strings.ToLower(s))
	if !ok || !st.Valid() {
		return "", errand.Errorf(errand.EVALIDATION, "%v is not a JobStatus", v)
	}
	return st, nil
}

// MarshalDeliveryStatus writes a delivery status as its enum value (PENDING).
func MarshalDeliveryStatus(s errand.DeliveryStatus) graphql.Marshaler {
	return graphql.MarshalString(strings.ToUpper(string(s)))
}

// UnmarshalDeliveryStatus reads an enum value (PENDING) as a delivery status.
func UnmarshalDeliveryStatus(v any) (errand.DeliveryStatus, error) {
	s, _ := v.(string)
	switch st := errand.DeliveryStatus(strings.ToLower(s)); st {
	case errand.DeliveryPending, errand.DeliverySucceeded, errand.DeliveryFailed:
		return st, nil
	}
	return "", errand.Errorf(errand.EVALIDATION, "%v is not a DeliveryStatus", v)
}
