package config

import (
	"reflect"
	"testing"
	"time"

	"github.com/errandhq/errand"
)

// TestFlowConfig reads the flow-control keys of the example into the
// domain's types.
func TestFlowConfig(t *testing.T) {
	c, err := Load(Source{File: "testdata/good-flow.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.HTTP.Limit(), (&errand.RateLimit{Rate: errand.Rate{Count: 100, Per: time.Second}, Burst: 200,
		Key: errand.FlowKey{Kind: errand.KeyPrincipal}}); !reflect.DeepEqual(got, want) {
		t.Errorf("http limit = %+v, want %+v", got, want)
	}
	ops := map[string]errand.Operation{}
	for _, o := range c.OperationList() {
		ops[o.Name] = o
	}
	f := ops["generate-report"].Flow
	want := errand.Flow{
		RateLimit:      &errand.RateLimit{Rate: errand.Rate{Count: 5, Per: time.Second}, Burst: 5, Key: errand.FlowKey{Kind: errand.KeyPrincipal}},
		StartRate:      errand.Rate{Count: 10, Per: time.Second},
		ConcurrencyKey: &errand.ConcurrencyKey{Key: errand.FlowKey{Kind: errand.KeyInput, Arg: "/customer_id"}, Limit: 2},
		Fairness:       &errand.Fairness{Key: errand.FlowKey{Kind: errand.KeyTenant}, Weights: map[string]int{"acme": 3}},
		MaxQueued:      &errand.QueueLimit{Limit: 10000},
		Unique:         &errand.Unique{Key: errand.FlowKey{Kind: errand.KeyInput, Arg: "/report_id"}, Window: 10 * time.Minute},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("flow =\n%+v\nwant\n%+v", f, want)
	}
	if got := ops["per-key"].Flow.MaxQueued; got == nil || *got != (errand.QueueLimit{Limit: 100, Key: errand.FlowKey{Kind: errand.KeyHeader, Arg: "X-Client-Id"}}) {
		t.Errorf("per-key max_queued = %+v", got)
	}
	if got := ops["per-key"].Flow; got.RateLimit != nil || !got.StartRate.IsZero() || got.Unique != nil {
		t.Errorf("unset flow keys set: %+v", got)
	}
}
