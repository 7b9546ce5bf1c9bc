package telemetry

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"gopkg.in/yaml.v3"
)

// exposed is every metric family errand exposes, fed so that each has a series.
func exposed(t *testing.T) map[string]bool {
	t.Helper()
	m, _ := NewMetrics(&MetricsConfig{Operations: []string{"report"}, Queue: func() ([]storage.QueueStat, error) { return nil, nil },
		Store: func() storage.Stats {
			return storage.Stats{Pool: &storage.PoolStats{Max: 4}, Tailer: &storage.TailerStats{}}
		}, Hub: fakeHub{}})
	m.Committed(&storage.CommitStats{Calls: 1, Events: append(jobLife("job_1", "report", "a", errand.EventJobSucceeded, ""),
		&errand.Event{Stream: "orders.eu", Tenant: "a", Type: "x", Time: t0})})
	m.Request("GET /v1/jobs/{id}", "GET", 200, time.Millisecond, false)
	m.Attempted("a", "succeeded", time.Millisecond)
	m.EndpointDisabled("a", "gone")
	m.WatchBridges(func() []BridgeSample {
		return []BridgeSample{{Bridge: "nats", Route: "orders", Direction: "out", Up: true, Messages: 3, Lag: 2}}
	})
	m.AuthFailed("missing")
	m.Denied("jobs:submit")
	m.StreamOpened("sse")
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	return names
}

var metricName = regexp.MustCompile(`\b(errand|process|go)_[a-z_]+\b`)

// checkNames fails for each metric an expression names that errand does not expose.
func checkNames(t *testing.T, where, expr string, names map[string]bool) {
	t.Helper()
	for _, n := range metricName.FindAllString(expr, -1) {
		base := n
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && names[b] {
				base = b
			}
		}
		if !names[base] {
			t.Errorf("%s uses %s, which errand does not expose", where, n)
		}
	}
}

// TestDashboard: every query of the Grafana dashboard (docs/grafana-errand.json)
// names only metrics errand exposes.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("../docs/grafana-errand.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	names := exposed(t)
	queries := 0
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			checkNames(t, "panel "+p.Title, q.Expr, names)
			queries++
		}
	}
	for _, v := range dash.Templating.List {
		if s, ok := v.Query.(string); ok {
			checkNames(t, "a variable", s, names)
		}
	}
	if queries < 30 {
		t.Errorf("the dashboard has %d queries, want its panels", queries)
	}
}

// TestAlerts: the alerting rules (docs/errand-alerts.yaml) name only
// metrics errand exposes, and promtool accepts them.
func TestAlerts(t *testing.T) {
	b, err := os.ReadFile("../docs/errand-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	names := exposed(t)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			checkNames(t, "alert "+r.Alert, r.Expr, names)
			n++
		}
	}
	if n < 5 {
		t.Errorf("%d alerts, want the queue's, failures', webhooks' and the store's", n)
	}
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (Debian package prometheus)")
		}
		t.Skip("promtool is not installed (test.sh installs it)")
	}
	if out, err := exec.Command(path, "check", "rules", "../docs/errand-alerts.yaml").CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}
