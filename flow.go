package errand

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Flow control: what an operation (or the HTTP server) admits, how fast its
// jobs start, how many run per key and how leases are shared between keys.
// The types here are what configuration declares; the queue and the HTTP API
// enforce them.

// KeyKind says where a flow key comes from.
type KeyKind string

// The kinds of flow key.
const (
	KeyPrincipal KeyKind = "principal" // the caller's Principal.ID
	KeyTenant    KeyKind = "tenant"    // the caller's tenant
	KeyGlobal    KeyKind = "global"    // one key for everyone
	KeyInput     KeyKind = "input"     // a value in the job's input, by JSON pointer
	KeyHeader    KeyKind = "header"    // a request header
)

// FlowKey names what a limit counts by: "principal", "tenant", "global",
// "input:/customer_id" (an RFC 6901 JSON pointer into the job's input) or
// "header:X-Client-Id".
type FlowKey struct {
	Kind KeyKind
	// Arg is the JSON pointer of an input key or the header name of a header
	// key (canonical form); empty for the others.
	Arg string
}

// ParseFlowKey reads a key as configuration writes it.
func ParseFlowKey(s string) (FlowKey, error) {
	kind, arg, _ := strings.Cut(s, ":")
	switch k := KeyKind(kind); k {
	case KeyPrincipal, KeyTenant, KeyGlobal:
		if arg != "" {
			return FlowKey{}, fmt.Errorf("%q: a %s key takes no argument", s, k)
		}
		return FlowKey{Kind: k}, nil
	case KeyInput:
		if _, err := splitPointer(arg); err != nil {
			return FlowKey{}, fmt.Errorf("%q: %w", s, err)
		}
		return FlowKey{Kind: k, Arg: arg}, nil
	case KeyHeader:
		if !validHeaderName(arg) {
			return FlowKey{}, fmt.Errorf("%q: %q is not a header name", s, arg)
		}
		return FlowKey{Kind: k, Arg: canonicalHeader(arg)}, nil
	}
	return FlowKey{}, fmt.Errorf("%q is not a key: principal, tenant, global, input:/json/pointer or header:Name", s)
}

// String is the key as configuration writes it.
func (k FlowKey) String() string {
	if k.Arg == "" {
		return string(k.Kind)
	}
	return string(k.Kind) + ":" + k.Arg
}

// IsZero reports whether no key is set.
func (k FlowKey) IsZero() bool { return k.Kind == "" }

// StoredKey is how a job keeps a flow key's value (Job.ConcurrencyKey,
// Job.FairKey): the value after "=", so that a job of an operation with the
// key never keeps "" (which means: none), whatever the value.
func StoredKey(value string) string { return "=" + value }

// KeyValue is the value a stored key holds (StoredKey's inverse).
func KeyValue(stored string) string { return strings.TrimPrefix(stored, "=") }

// KeySource is what a key's value is taken from at submit.
type KeySource struct {
	Principal *Principal
	// Input is the job's input (JSON); nil for a request that is no submit.
	Input json.RawMessage
	// Header returns a request header's value ("" when absent); nil when the
	// request came in another way than HTTP (a bridge, say).
	Header func(name string) string
}

// Value is the key's value for src. An input key whose pointer does not
// resolve, or resolves to null, and a missing header, give "" (one shared
// bucket for all such requests). Strings are their text; other JSON values
// their compact JSON text.
func (k FlowKey) Value(src KeySource) string {
	switch k.Kind {
	case KeyPrincipal:
		if src.Principal != nil {
			return src.Principal.ID
		}
	case KeyTenant:
		if src.Principal != nil {
			return src.Principal.Tenant
		}
	case KeyInput:
		return inputValue(src.Input, k.Arg)
	case KeyHeader:
		if src.Header != nil {
			return src.Header(k.Arg)
		}
	}
	return ""
}

// inputValue resolves pointer in input; "" when it does not resolve.
func inputValue(input json.RawMessage, pointer string) string {
	tokens, err := splitPointer(pointer)
	if err != nil || len(input) == 0 {
		return ""
	}
	cur := input
	for _, tok := range tokens {
		next, ok := step(cur, tok)
		if !ok {
			return ""
		}
		cur = next
	}
	var s string
	if json.Unmarshal(cur, &s) == nil {
		return s
	}
	if string(cur) == "null" {
		return ""
	}
	var v any
	if json.Unmarshal(cur, &v) != nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// step takes one pointer token into an object or array.
func step(doc json.RawMessage, tok string) (json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(doc, &obj) == nil {
		v, ok := obj[tok]
		return v, ok
	}
	var arr []json.RawMessage
	if json.Unmarshal(doc, &arr) == nil {
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || i >= len(arr) || (len(tok) > 1 && tok[0] == '0') {
			return nil, false
		}
		return arr[i], true
	}
	return nil, false
}

// splitPointer splits an RFC 6901 JSON pointer into its unescaped tokens. The
// whole document ("") is refused: a key is one value in it.
func splitPointer(p string) ([]string, error) {
	if p == "" || p[0] != '/' {
		return nil, fmt.Errorf("%q is not a JSON pointer into the input (like /customer_id)", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, t := range parts {
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
				return nil, fmt.Errorf("%q is not a JSON pointer: '~' must be written ~0 and '/' ~1", p)
			}
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// canonicalHeader is the MIME canonical form (x-client-id → X-Client-Id).
func canonicalHeader(s string) string {
	b := []byte(s)
	upper := true
	for i, c := range b {
		switch {
		case upper && c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && c >= 'A' && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return string(b)
}

// Rate is a number of events per period: "100/s", "5/m", "1000/h", "10/2s".
type Rate struct {
	Count int
	Per   time.Duration
}

// ParseRate reads a rate. The count must be at least 1 and the period a
// positive duration (s, m, h, or a Go duration such as 500ms or 2s).
func ParseRate(s string) (Rate, error) {
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("%q is not a rate (like 100/s, 5/m or 1000/h)", s)
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || count < 1 {
		return Rate{}, fmt.Errorf("%q: the count must be a whole number of at least 1", s)
	}
	per = strings.TrimSpace(per)
	var d time.Duration
	switch per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		if d, err = time.ParseDuration(per); err != nil || d <= 0 {
			return Rate{}, fmt.Errorf("%q: the period must be s, m, h or a duration like 2s", s)
		}
	}
	return Rate{Count: count, Per: d}, nil
}

// IsZero reports whether no rate is set.
func (r Rate) IsZero() bool { return r.Count == 0 }

// Interval is the time one event's share of the rate takes (Per/Count).
func (r Rate) Interval() time.Duration { return r.Per / time.Duration(r.Count) }

// PerSecond is the rate in events per second.
func (r Rate) PerSecond() float64 { return float64(r.Count) / r.Per.Seconds() }

// String is the rate as configuration writes it.
func (r Rate) String() string {
	switch r.Per {
	case time.Second:
		return strconv.Itoa(r.Count) + "/s"
	case time.Minute:
		return strconv.Itoa(r.Count) + "/m"
	case time.Hour:
		return strconv.Itoa(r.Count) + "/h"
	}
	return strconv.Itoa(r.Count) + "/" + r.Per.String()
}

// RateLimit admits requests per key at Rate, with bursts of up to Burst (a
// token bucket, enforced as GCRA).
type RateLimit struct {
	Rate Rate
	// Burst is how many requests may come at once. Defaults to the rate's count.
	Burst int
	// Key is what the limit counts by. Defaults to principal.
	Key FlowKey
}

// ConcurrencyKey caps how many jobs with the same key run at once.
type ConcurrencyKey struct {
	Key   FlowKey
	Limit int
}

// Fairness shares an operation's leases between keys by weighted round robin.
type Fairness struct {
	Key FlowKey
	// Weights give some keys' values a larger share (default weight 1).
	Weights map[string]int
}

// QueueLimit is backpressure: at most Limit jobs queued (per key, when Key is
// set); submits beyond it are refused with queue_full.
type QueueLimit struct {
	Limit int
	Key   FlowKey
}

// Unique makes a submit whose key matches a job that has not finished, or that
// finished within Window, answer that job instead of making another.
type Unique struct {
	Key    FlowKey
	Window time.Duration
}

// Flow is an operation's flow control; the zero value limits nothing.
type Flow struct {
	// RateLimit admits submits (each job of a batch counts); nil: no limit.
	RateLimit *RateLimit
	// StartRate caps how many jobs start per second across the cluster.
	StartRate Rate
	// ConcurrencyKey caps running jobs per key; nil: no cap per key.
	ConcurrencyKey *ConcurrencyKey
	// Fairness shares leases between keys; nil: first in, first out.
	Fairness *Fairness
	// MaxQueued refuses submits beyond a queue depth; nil: no bound.
	MaxQueued *QueueLimit
	// Unique answers duplicates with the existing job; nil: every submit is a job.
	Unique *Unique
}
