package webhook

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/channel"
)

// Limits on an endpoint's filters.
const (
	MaxFilters   = 64
	MaxFilterLen = 200
)

// knownTypes are the event types a type filter may select.
var knownTypes = []string{
	errand.EventJobCreated, errand.EventJobStarted, errand.EventJobProgress, errand.EventJobRetrying,
	errand.EventJobSucceeded, errand.EventJobFailed, errand.EventJobCanceled, errand.EventEndpointDisabled,
}

var (
	typeGlob = regexp.MustCompile(`^[a-z0-9._*-]+$`)
	opGlob   = regexp.MustCompile(`^[a-z0-9._*-]+$`)
)

// Filter selects the events an endpoint receives. Its entries are event types
// with * wildcards ("job.succeeded", "job.*"), "operation:<name>" with *
// wildcards (only jobs of those operations; both matched by path.Match, where
// '*' is any run of characters) and "channel:<pattern>" (channel events, by a
// channel pattern: channel.MatchPattern, where '*' is one segment and a final
// '>' the rest). No entries selects every event.
type Filter struct {
	types, ops, channels []string
}

// ParseFilter checks and compiles an endpoint's filter entries. Errors point at
// the entry (/events/i).
func ParseFilter(entries []string) (*Filter, error) {
	f := &Filter{}
	var bad []errand.FieldError
	if len(entries) > MaxFilters {
		return nil, fieldError("/events", fmt.Sprintf("at most %d filters", MaxFilters))
	}
	for i, e := range entries {
		if msg := f.add(e); msg != "" {
			bad = append(bad, errand.FieldError{Pointer: fmt.Sprintf("/events/%d", i), Message: msg})
		}
	}
	if len(bad) > 0 {
		return nil, &errand.Error{Code: errand.EVALIDATION, Message: "the event filters are invalid", Fields: bad}
	}
	return f, nil
}

// add adds one entry, or says what is wrong with it.
func (f *Filter) add(e string) string {
	if len(e) == 0 || len(e) > MaxFilterLen {
		return fmt.Sprintf("a filter is 1 to %d characters", MaxFilterLen)
	}
	kind, arg, prefixed := strings.Cut(e, ":")
	if !prefixed {
		if !typeGlob.MatchString(e) || !matchesKnown(e) {
			return fmt.Sprintf("%q matches no event type: use a job event type (job.succeeded, job.*, …), "+
				"endpoint.disabled, operation:<name> or channel:<pattern>", errand.Truncate(e, 80))
		}
		f.types = append(f.types, e)
		return ""
	}
	switch kind {
	case "operation":
		if !opGlob.MatchString(arg) {
			return "operation:<name> takes an operation name, with * as a wildcard"
		}
		f.ops = append(f.ops, arg)
	case "channel":
		if !channel.ValidPattern(arg) {
			return "channel:<pattern> takes a channel name or pattern (orders.*, orders.>)"
		}
		f.channels = append(f.channels, arg)
	default:
		return fmt.Sprintf("unknown filter kind %q: use operation: or channel:", errand.Truncate(kind, 40))
	}
	return ""
}

func matchesKnown(glob string) bool {
	for _, t := range knownTypes {
		if ok, _ := path.Match(glob, t); ok {
			return true
		}
	}
	return false
}

func anyGlob(globs []string, s string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

func (f *Filter) empty() bool { return len(f.types) == 0 && len(f.ops) == 0 && len(f.channels) == 0 }

// Match reports whether the filter selects e. A job event needs a matching type
// entry (or, with none, the filter naming operations or nothing at all) and, when
// operations are named, a job of one of them. A channel event needs a matching
// channel entry. An endpoint event needs a matching type entry. The empty filter
// selects everything.
func (f *Filter) Match(e *errand.Event) bool {
	op := ""
	if e.Job != nil {
		op = e.Job.Operation
	}
	return f.MatchOperation(e, op)
}

// MatchOperation is Match for an event whose job is not at hand, with the
// operation of its job ("" for none): events read back from the log, as the
// broker bridges read them.
func (f *Filter) MatchOperation(e *errand.Event, operation string) bool {
	if f.empty() {
		return true
	}
	switch {
	case isJobStream(e.Stream):
		typeOK := anyGlob(f.types, e.Type) || (len(f.types) == 0 && (len(f.channels) == 0 || len(f.ops) > 0))
		opOK := len(f.ops) == 0 || (operation != "" && anyGlob(f.ops, operation))
		return typeOK && opOK
	case e.Stream == errand.StreamWebhooks:
		return anyGlob(f.types, e.Type)
	default:
		for _, p := range f.channels {
			if channel.MatchPattern(p, e.Stream) {
				return true
			}
		}
		return false
	}
}

func fieldError(pointer, msg string) error {
	return &errand.Error{Code: errand.EVALIDATION, Message: "the endpoint has invalid fields",
		Fields: []errand.FieldError{{Pointer: pointer, Message: msg}}}
}
