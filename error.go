package errand

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Error codes are stable strings clients may act on. httpapi maps each to a status.
const (
	EMALFORMED        = "malformed_json"         // the body is not the JSON it should be
	EINVALID          = "invalid_request"        // a parameter or header is wrong
	EVALIDATION       = "validation_failed"      // the input does not match a schema
	ERESULTINVALID    = "result_invalid"         // a worker's result does not match the operation's result_schema
	ECURSOR           = "invalid_cursor"         // a pagination or event cursor is not one we issued
	ENOTFOUND         = "not_found"              // the resource does not exist (for this tenant)
	EOPNOTFOUND       = "operation_not_found"    // the operation is not declared
	EJOBNOTFOUND      = "job_not_found"          // the job does not exist (for this tenant)
	ECHANNELNOTFOUND  = "channel_not_found"      // no declared channel has that name
	EIDEMPOTENCY      = "idempotency_key_reused" // same key, different request
	ELEASEEXPIRED     = "lease_expired"          // the lease ended, was completed or taken over
	ECONFLICT         = "conflict"               // the resource is not in a state that allows this
	ENOTTERMINAL      = "job_not_terminal"       // the job has not finished yet
	ETOOLARGE         = "body_too_large"         // the body is over the limit
	EMEDIATYPE        = "unsupported_media_type" // the body is not JSON
	EUNAUTHORIZED     = "unauthorized"           // no valid credentials
	EFORBIDDEN        = "forbidden"              // not allowed
	ERATELIMITED      = "rate_limited"           // too many requests
	EQUEUEFULL        = "queue_full"             // backpressure: try later
	EUNAVAILABLE      = "unavailable"            // a dependency (the store) is down
	ESTORAGEFULL      = "storage_full"           // the store has no space left: writes fail until some is freed
	EMETHODNOTALLOWED = "method_not_allowed"     // wrong HTTP method
	EINTERNAL         = "internal"               // a bug or an unexpected failure
)

// Job failure codes set by errand itself on a job's error.
const (
	ECODELEASEEXPIRED = "lease_expired" // the worker stopped heartbeating
	ECODETIMEOUT      = "timeout"       // the attempt ran past the operation's timeout
	ECODECANCELED     = "canceled"      // the job was canceled while it ran
)

// Error is an application error with a code clients may act on.
type Error struct {
	Code    string
	Message string
	// Fields point at the parts of the request that are wrong.
	Fields []FieldError
	// RetryAfter, when set, tells the client how long to wait before trying again.
	RetryAfter time.Duration
	// Rate, on a rate_limited refusal, is the state of the limit that refused.
	Rate *RateStatus
	// Action and Resource, on a refusal (see Deny and Hidden), say what was refused
	// for the audit log.
	Action, Resource string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error in err's chain, EINTERNAL for any other
// error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the *Error in err's chain; other errors are
// internal and their text is not for clients.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// FormatCursor turns an event sequence number into the cursor clients see.
func FormatCursor(seq int64) string { return strconv.FormatInt(seq, 10) }

// ParseCursor reads a cursor; "" is the start of the log.
func ParseCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, Errorf(ECURSOR, "cursor %q is not one errand issued", Truncate(s, 64))
	}
	return n, nil
}

// ResumeCursor is where a stream resumes: lastEventID (the Last-Event-ID an
// EventSource sends when it reconnects) wins over after (a ?after= query or
// an argument).
func ResumeCursor(lastEventID, after string) (int64, error) {
	if id := strings.TrimSpace(lastEventID); id != "" {
		return ParseCursor(id)
	}
	return ParseCursor(after)
}

// Truncate shortens s to n bytes, marking the cut with "…" (for echoing client
// input in error messages).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
