package config

import (
	"fmt"
	"time"

	"github.com/errandhq/errand"
	"gopkg.in/yaml.v3"
)

// RateLimit admits requests per key: a token bucket refilled at Rate holding
// up to Burst.
type RateLimit struct {
	// Rate is "100/s", "5/m", "1000/h" (or "10/2s"). Empty: no limit.
	Rate string `yaml:"rate"`
	// Burst is how many requests may come at once. Defaults to the rate's count.
	Burst *int `yaml:"burst"`
	// Key is what the limit counts by: principal (the default), tenant, global,
	// input:/json/pointer (submits only) or header:Name.
	Key string `yaml:"key"`
}

// ConcurrencyKey caps the jobs with the same key that run at once.
type ConcurrencyKey struct {
	// Key is tenant, principal, global, input:/json/pointer or header:Name.
	Key string `yaml:"key"`
	// Limit is the most jobs per key running at once (at least 1).
	Limit int `yaml:"limit"`
}

// Fairness shares an operation's leases between keys by weighted round robin.
type Fairness struct {
	// Key is what the shares are by: tenant, principal, input:/… or header:….
	Key string `yaml:"key"`
	// Weights give some keys' values a larger share; others weigh 1.
	Weights map[string]int `yaml:"weights"`
}

// MaxQueued is written as a number (max_queued: 10000) or, to bound the queue
// per key, as a mapping (max_queued: { limit: 100, key: tenant }).
type MaxQueued struct {
	// Limit is the most jobs queued (per key, with Key); 0: no bound.
	Limit int `yaml:"limit"`
	// Key, when set, bounds each key's queue rather than the operation's.
	Key string `yaml:"key"`
}

// UnmarshalYAML reads a number or a mapping.
func (m *MaxQueued) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&m.Limit)
	}
	type plain MaxQueued
	return n.Decode((*plain)(m))
}

// Unique makes a duplicate submit answer the existing job.
type Unique struct {
	// Key is what makes two submits the same job: input:/report_id, tenant, ….
	Key string `yaml:"key"`
	// Window is how long after it finished a job still answers duplicates.
	// Defaults to 0: only while it is queued, scheduled or running.
	Window Duration `yaml:"window"`
}

// flow converts an operation's flow settings (validated) to the domain's.
func (o *Operation) flow() errand.Flow {
	var f errand.Flow
	if o.RateLimit.Rate != "" {
		f.RateLimit = o.RateLimit.limit()
	}
	f.StartRate, _ = errand.ParseRate(o.StartRate)
	if o.ConcurrencyKey.Key != "" {
		k, _ := errand.ParseFlowKey(o.ConcurrencyKey.Key)
		f.ConcurrencyKey = &errand.ConcurrencyKey{Key: k, Limit: o.ConcurrencyKey.Limit}
	}
	if o.Fairness.Key != "" {
		k, _ := errand.ParseFlowKey(o.Fairness.Key)
		f.Fairness = &errand.Fairness{Key: k, Weights: o.Fairness.Weights}
	}
	if o.MaxQueued.Limit > 0 {
		q := &errand.QueueLimit{Limit: o.MaxQueued.Limit}
		q.Key, _ = errand.ParseFlowKey(o.MaxQueued.Key)
		f.MaxQueued = q
	}
	if o.Unique.Key != "" {
		k, _ := errand.ParseFlowKey(o.Unique.Key)
		f.Unique = &errand.Unique{Key: k, Window: time.Duration(o.Unique.Window)}
	}
	return f
}

// Limit is the HTTP server's limit on every request of a key; nil: none.
func (h *HTTP) Limit() *errand.RateLimit {
	if h.RateLimit.Rate == "" {
		return nil
	}
	return h.RateLimit.limit()
}

// limit converts a validated rate limit.
func (r *RateLimit) limit() *errand.RateLimit {
	rate, _ := errand.ParseRate(r.Rate)
	l := &errand.RateLimit{Rate: rate, Burst: rate.Count, Key: errand.FlowKey{Kind: errand.KeyPrincipal}}
	if r.Burst != nil {
		l.Burst = *r.Burst
	}
	if r.Key != "" {
		l.Key, _ = errand.ParseFlowKey(r.Key)
	}
	return l
}

// validate checks a rate limit; input keys are allowed only where there is an
// input (submits).
func (r *RateLimit) validate(inputs bool) []fieldErr {
	var errs []fieldErr
	bad := func(msg string, path ...string) { errs = append(errs, fieldErr{path, msg}) }
	if r.Rate == "" {
		if r.Burst != nil || r.Key != "" {
			bad("set the rate (like 100/s) of the limit", "rate")
		}
		return errs
	}
	if _, err := errand.ParseRate(r.Rate); err != nil {
		bad(err.Error(), "rate")
	}
	if r.Burst != nil && *r.Burst < 1 {
		bad("must be at least 1", "burst")
	}
	if r.Key != "" {
		errs = append(errs, checkKey(r.Key, inputs, "key")...)
	}
	return errs
}

// checkKey checks a flow key where path names it.
func checkKey(s string, inputs bool, path ...string) []fieldErr {
	k, err := errand.ParseFlowKey(s)
	switch {
	case err != nil:
		return []fieldErr{{path, err.Error()}}
	case k.Kind == errand.KeyInput && !inputs:
		return []fieldErr{{path, "an input key applies to an operation's submits only"}}
	}
	return nil
}

// validateFlow checks an operation's flow settings.
func (o *Operation) validateFlow() []fieldErr {
	var errs []fieldErr
	bad := func(msg string, path ...string) { errs = append(errs, fieldErr{path, msg}) }
	under := func(prefix string, es []fieldErr) {
		for _, e := range es {
			errs = append(errs, fieldErr{append([]string{prefix}, e.path...), e.msg})
		}
	}
	under("rate_limit", o.RateLimit.validate(true))
	if o.StartRate != "" {
		if _, err := errand.ParseRate(o.StartRate); err != nil {
			bad(err.Error(), "start_rate")
		}
	}
	if c := o.ConcurrencyKey; c.Key != "" || c.Limit != 0 {
		if c.Key == "" {
			bad("set the key the limit counts by (like input:/customer_id)", "concurrency_key", "key")
		} else {
			errs = append(errs, checkKey(c.Key, true, "concurrency_key", "key")...)
		}
		if c.Limit < 1 {
			bad("must be at least 1", "concurrency_key", "limit")
		}
	}
	errs = append(errs, o.Fairness.validate()...)
	if q := o.MaxQueued; q.Limit < 0 || (q.Limit == 0 && q.Key != "") {
		bad("must be at least 1", "max_queued", "limit")
	} else if q.Key != "" {
		errs = append(errs, checkKey(q.Key, true, "max_queued", "key")...)
	}
	if u := o.Unique; u.Key != "" || u.Window != 0 {
		if u.Key == "" {
			bad("set the key that makes two submits one job (like input:/report_id)", "unique", "key")
		} else {
			errs = append(errs, checkKey(u.Key, true, "unique", "key")...)
		}
		if u.Window < 0 {
			bad("must not be negative", "unique", "window")
		}
	}
	return errs
}

// validate checks fairness: a key, and weights only for values it can have.
func (f *Fairness) validate() []fieldErr {
	if f.Key == "" {
		if len(f.Weights) > 0 {
			return []fieldErr{{[]string{"fairness", "key"}, "set the key the shares are by (like tenant)"}}
		}
		return nil
	}
	errs := checkKey(f.Key, true, "fairness", "key")
	k, _ := errand.ParseFlowKey(f.Key)
	for _, v := range sortedKeys(f.Weights) {
		switch w := f.Weights[v]; {
		case k.Kind == errand.KeyGlobal:
			errs = append(errs, fieldErr{[]string{"fairness", "weights", v}, "a global key has one value: weights cannot match"})
		case v == "":
			errs = append(errs, fieldErr{[]string{"fairness", "weights"}, "a weight needs the key's value it applies to"})
		case w < 1 || w > 1000:
			errs = append(errs, fieldErr{[]string{"fairness", "weights", v}, fmt.Sprintf("must be between 1 and 1000, not %d", w)})
		}
	}
	return errs
}
