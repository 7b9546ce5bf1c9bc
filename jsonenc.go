package errand

import (
	"encoding/json"
	"strconv"
	"time"
)

// Jobs are the bulk of what errand encodes: every lease, completion, submit
// answer and terminal event carries one. encoding/json renders a type with a
// MarshalJSON method twice over (the method's output is scanned and compacted
// again by the caller), so a job is written here field by field instead, byte
// for byte what reflection would write (jsonenc_test.go holds it to that).
// Callers that write the bytes themselves (the HTTP answers in httpapi, event
// data) skip the second pass too.

// AppendJSON appends the job as clients see it, with its links: the same bytes
// as MarshalJSON.
func (j *Job) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, j.ID)
	b = append(b, `,"operation":`...)
	b = appendString(b, j.Operation)
	b = append(b, `,"status":`...)
	b = appendString(b, string(j.Status))
	b = append(b, `,"input":`...)
	b = appendRaw(b, j.Input)
	b = append(b, `,"result":`...)
	b = appendRaw(b, j.Result)
	b = append(b, `,"error":`...)
	b = appendValue(b, j.Error, j.Error == nil)
	b = append(b, `,"progress":`...)
	b = appendValue(b, j.Progress, j.Progress == nil)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(j.Attempt), 10)
	b = append(b, `,"max_attempts":`...)
	b = strconv.AppendInt(b, int64(j.MaxAttempts), 10)
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(j.Priority), 10)
	b = append(b, `,"timeout_seconds":`...)
	b = strconv.AppendInt(b, int64(j.TimeoutSeconds), 10)
	b = append(b, `,"cancel_requested":`...)
	b = strconv.AppendBool(b, j.CancelRequested)
	if len(j.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b = appendValue(b, j.Metadata, false)
	}
	if j.CallbackURL != "" {
		b = append(b, `,"callback_url":`...)
		b = appendString(b, j.CallbackURL)
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, j.CreatedAt)
	b = append(b, `,"run_at":`...)
	b = appendTime(b, j.RunAt)
	b = append(b, `,"started_at":`...)
	b = appendTimePtr(b, j.StartedAt)
	b = append(b, `,"finished_at":`...)
	b = appendTimePtr(b, j.FinishedAt)
	if j.QueuePosition != nil {
		b = append(b, `,"queue_position":`...)
		b = strconv.AppendInt(b, int64(*j.QueuePosition), 10)
		b = append(b, `,"estimated_start_at":`...)
		b = appendTimePtr(b, j.EstimatedStartAt)
	}
	b = append(b, `,"artifacts":`...)
	if len(j.Artifacts) == 0 {
		b = append(b, `[]`...)
	} else {
		b = appendValue(b, j.Artifacts, false)
	}
	b = append(b, `,"links":{"self":`...)
	b = appendString(b, j.Path())
	b = append(b, `,"events":`...)
	b = appendString(b, j.Path()+"/events")
	return append(b, `}}`...)
}

// AppendJSON appends the lease as workers see it.
func (l *Lease) AppendJSON(b []byte) []byte {
	b = append(b, `{"lease_id":`...)
	b = appendString(b, l.ID)
	b = append(b, `,"expires_at":`...)
	b = appendTime(b, l.ExpiresAt)
	if l.TraceParent != "" {
		b = append(b, `,"traceparent":`...)
		b = appendString(b, l.TraceParent)
	}
	b = append(b, `,"job":`...)
	if l.Job == nil {
		b = append(b, "null"...)
	} else {
		b = l.Job.AppendJSON(b)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string. Strings of plain printable ASCII
// (ids, names, statuses) are copied; any other goes through encoding/json, so
// escaping (HTML characters included, as json.Marshal does) stays its own.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return appendValue(b, s, false)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendRaw appends stored JSON (input, result) as json.Marshal writes a
// json.RawMessage: compact, HTML characters escaped, null when empty. Stored
// JSON without spaces or such characters is already that and is copied.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	for _, c := range raw {
		if c <= ' ' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			return appendValue(b, raw, false)
		}
	}
	return append(b, raw...)
}

// appendValue appends json.Marshal's rendering of v, or null when isNil.
func appendValue(b []byte, v any, isNil bool) []byte {
	if isNil {
		return append(b, "null"...)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, out...)
}

func appendTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		return appendValue(b, t, false) // what time.Time.MarshalJSON does with it
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendTimePtr(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendTime(b, *t)
}
