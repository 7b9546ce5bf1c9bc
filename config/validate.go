package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/schema"
	"golang.org/x/net/http/httpguts"
)

// validate checks values; errors name the key and where it was set.
func (c *Config) validate(l *lines) error {
	var errs []error
	bad := func(path []string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config%s: %s: %s", where(l.file), l.at(path...), fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad([]string{"listen"}, "%q is not host:port (like :8080 or 127.0.0.1:8080)", c.Listen)
	}
	if u, err := url.Parse(c.Store); err != nil || !slices.Contains([]string{"sqlite", "postgres", "postgresql"}, u.Scheme) {
		bad([]string{"store"}, "the store must be a sqlite://path or postgres://… URL")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad([]string{"log", "level"}, "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if !slices.Contains([]string{"json", "text"}, c.Log.Format) {
		bad([]string{"log", "format"}, "must be json or text, not %q", c.Log.Format)
	}
	if c.HTTP.MaxBodyBytes < 1024 || c.HTTP.MaxBodyBytes > 1<<30 {
		bad([]string{"http", "max_body_bytes"}, "must be between 1024 and 1073741824")
	}
	c.validateLimits(bad)
	for _, e := range c.HTTP.RateLimit.validate(false) {
		bad(append([]string{"http", "rate_limit"}, e.path...), "%s", e.msg)
	}
	if u, err := url.Parse(c.HTTP.PublicURL); c.HTTP.PublicURL != "" &&
		(err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "") {
		bad([]string{"http", "public_url"}, "%q is not an http:// or https:// URL without query or fragment", c.HTTP.PublicURL)
	}
	if c.Artifacts.MaxBytes < 1 {
		bad([]string{"artifacts", "max_bytes"}, "must be positive")
	}
	if c.Workers.MaxJobs < 1 || c.Workers.MaxJobs > 10000 {
		bad([]string{"workers", "max_jobs"}, "must be between 1 and 10000")
	}
	if c.Workers.MaxLease < c.Workers.DefaultLease {
		bad([]string{"workers", "max_lease"}, "must not be shorter than workers.default_lease (%s)", c.Workers.DefaultLease)
	}
	c.validateWebhooks(bad)
	c.validateAccess(bad)
	c.validateGraphQL(bad)
	c.validateTelemetry(bad)
	for _, p := range sortedKeys(c.Channels) {
		ch := c.Channels[p]
		switch {
		case ch == nil:
			bad([]string{"channels", p}, "declare the channel's settings (at least {})")
		case !channel.ValidPattern(p):
			bad([]string{"channels", p}, "not a channel name or pattern: dot-separated segments of letters, digits, '_' and '-', where '*' is any one segment and a final '>' any rest")
		case ch.History < 0:
			bad([]string{"channels", p, "history"}, "must not be negative")
		case ch.Schema != nil:
			if path, msg := checkSchema(ch.Schema); msg != "" {
				bad(append([]string{"channels", p, "schema"}, path...), "%s", msg)
			}
		}
	}
	routes := map[string]string{}
	for _, name := range sortedKeys(c.Operations) {
		for _, e := range c.Operations[name].validate(name, c, routes) {
			bad(append([]string{"operations", name}, e.path...), "%s", e.msg)
		}
	}
	c.validateBridges(bad)
	return errors.Join(errs...)
}

type fieldErr struct {
	path []string
	msg  string
}

func (o *Operation) validate(name string, c *Config, routes map[string]string) []fieldErr {
	var errs []fieldErr
	bad := func(msg string, path ...string) { errs = append(errs, fieldErr{path, msg}) }
	if o == nil {
		return []fieldErr{{nil, "declare the operation's settings (at least {})"}}
	}
	if !opName.MatchString(name) {
		bad("an operation name is 1 to 63 lower-case letters, digits, '.', '_' or '-'")
	}
	if o.Route != "" {
		switch {
		case !routeRe.MatchString(o.Route):
			bad(fmt.Sprintf("%q is not a path like /generate-report", o.Route), "route")
		case reservedRoute(o.Route):
			bad(fmt.Sprintf("%q is a path errand serves itself", o.Route), "route")
		case routes[o.Route] != "":
			bad(fmt.Sprintf("%q is already the route of operation %s", o.Route, routes[o.Route]), "route")
		}
		routes[o.Route] = name
	}
	errs = append(errs, o.Handler.validate()...)
	if path, msg := checkSchema(o.InputSchema); msg != "" {
		bad(msg, append([]string{"input_schema"}, path...)...)
	}
	if path, msg := checkSchema(o.ResultSchema); msg != "" {
		bad(msg, append([]string{"result_schema"}, path...)...)
	}
	errs = append(errs, o.validateNumbers(c)...)
	errs = append(errs, o.validateFlow()...)
	return errs
}

// checkSchema compiles a schema from the YAML (nil is none). When it does not
// compile, it says where in the schema the fault is (its key path) and what
// it is.
func checkSchema(v any) (path []string, msg string) {
	if v == nil {
		return nil, ""
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, "a schema is a mapping with string keys"
	}
	_, err = schema.Compile("config", raw)
	var se *schema.Error
	if errors.As(err, &se) {
		return se.Path, se.Message
	}
	if err != nil {
		return nil, err.Error()
	}
	return nil, ""
}

func (o *Operation) validateNumbers(c *Config) []fieldErr {
	var errs []fieldErr
	bad := func(msg string, path ...string) { errs = append(errs, fieldErr{path, msg}) }
	week := Duration(7 * 24 * time.Hour)
	if o.Timeout < 0 || o.Timeout > week {
		bad("must be between 1s and 168h", "timeout")
	}
	if o.Retry.MaxAttempts < 0 || o.Retry.MaxAttempts > 1000 {
		bad("must be between 1 and 1000", "retry", "max_attempts")
	}
	if o.Retry.Max != 0 && o.Retry.Initial > o.Retry.Max {
		bad("must not be longer than retry.max", "retry", "initial")
	}
	if o.Concurrency < 0 {
		bad("must be 0 (unlimited) or more", "concurrency")
	}
	if o.Wait > c.HTTP.MaxWait {
		bad(fmt.Sprintf("must not be longer than http.max_wait (%s)", c.HTTP.MaxWait), "wait")
	}
	return errs
}

func reservedRoute(r string) bool {
	for _, p := range reserved {
		if r == p || strings.HasPrefix(r, p+"/") {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var methods = []string{"POST", "PUT", "PATCH", "GET", "DELETE"}

func (h *Handler) validate() []fieldErr {
	var errs []fieldErr
	bad := func(msg string, path ...string) {
		errs = append(errs, fieldErr{append([]string{"handler"}, path...), msg})
	}
	switch h.Type {
	case errand.HandlerPull:
	case errand.HandlerHTTP:
		u, err := url.Parse(h.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(fmt.Sprintf("%q is not an http:// or https:// URL", h.URL), "url")
		}
		if h.Method != "" && !slices.Contains(methods, strings.ToUpper(h.Method)) {
			bad(fmt.Sprintf("%q is not one of %s", h.Method, strings.Join(methods, ", ")), "method")
		}
		for k := range h.Headers {
			if !httpguts.ValidHeaderFieldName(k) {
				bad(fmt.Sprintf("%q is not a header name", k), "headers")
			}
		}
	case errand.HandlerExec:
		if len(h.Command) == 0 || h.Command[0] == "" {
			bad("name the program to run, like [\"./render-report\", \"--pdf\"]", "command")
		}
	default:
		bad(fmt.Sprintf("%q is not a handler type (pull, http or exec)", h.Type), "type")
	}
	if h.Type != errand.HandlerHTTP && (h.URL != "" || h.Method != "" || len(h.Headers) > 0 || h.Secret != "") {
		bad("url, method, headers and secret belong to http handlers", "type")
	}
	if h.Type != errand.HandlerExec && (len(h.Command) > 0 || len(h.Env) > 0 || h.Dir != "") {
		bad("command, env and dir belong to exec handlers", "type")
	}
	if h.Workers < 0 || h.Workers > 1000 {
		bad("must be between 1 and 1000", "workers")
	}
	return errs
}

func (c *Config) validateWebhooks(bad func(path []string, format string, args ...any)) {
	w := &c.Webhooks
	for i, a := range w.AllowPrivate {
		if _, err := netip.ParsePrefix(strings.TrimSpace(a)); err != nil {
			bad([]string{"webhooks", "allow_private", strconv.Itoa(i)}, "%q is not a CIDR prefix like 127.0.0.0/8", a)
		}
	}
	if w.Timeout < Duration(time.Second) || w.Timeout > Duration(5*time.Minute) {
		bad([]string{"webhooks", "timeout"}, "must be between 1s and 5m")
	}
	if len(w.RetrySchedule) > 50 {
		bad([]string{"webhooks", "retry_schedule"}, "at most 50 attempts")
	}
	if w.Concurrency < 1 || w.Concurrency > 1000 {
		bad([]string{"webhooks", "concurrency"}, "must be between 1 and 1000")
	}
	if w.RateLimit < 0 {
		bad([]string{"webhooks", "rate_limit"}, "must not be negative")
	}
}

func (c *Config) validateLimits(bad func(path []string, format string, args ...any)) {
	h := &c.HTTP
	between := func(key string, v, lo, hi Size) {
		if v < lo || v > hi {
			bad([]string{"http", key}, "must be between %s and %s", lo, hi)
		}
	}
	between("page_bytes", h.PageBytes, 64<<10, 1<<30)
	between("replay_bytes", h.ReplayBytes, 4<<10, 1<<30)
	between("stream_buffer_bytes", h.StreamBufferBytes, 4<<10, 1<<30)
	if h.ListTimeout < Duration(100*time.Millisecond) || h.ListTimeout > Duration(10*time.Minute) {
		bad([]string{"http", "list_timeout"}, "must be between 100ms and 10m")
	}
	if h.MaxConnections != 0 && h.MaxConnections < 16 {
		bad([]string{"http", "max_connections"}, "must be 0 (from the open-file limit) or at least 16")
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < 32<<20 {
		bad([]string{"memory_limit"}, "must be 0 (from GOMEMLIMIT or the cgroup) or at least 32MiB")
	}
}
