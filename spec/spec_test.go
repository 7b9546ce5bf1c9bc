package spec

import (
	"bytes"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/errandhq/errand/audit"
	"github.com/errandhq/errand/auth"
	"github.com/errandhq/errand/config"
	"github.com/errandhq/errand/httpapi"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/telemetry"
	"github.com/errandhq/errand/webhook"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite golden files")

// input is what errand serve documents for the configuration in file: the
// routes httpapi registers with every part of the API present.
func input(t testing.TB, file string) Input {
	t.Helper()
	cfg, err := config.Load(config.Source{File: file})
	if err != nil {
		t.Fatal(err)
	}
	return Input{Config: cfg, Routes: allRoutes(t, cfg), Version: "test"}
}

func allRoutes(t testing.TB, cfg *config.Config) []string {
	jobs, err := job.NewService(nil, nil, cfg.OperationList(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return httpapi.Routes(httpapi.Deps{Jobs: jobs, Webhooks: &webhook.Service{}, Auth: &auth.Authenticator{},
		Audit: &audit.Log{}, Contracts: &Server{}, Metrics: http.NotFoundHandler(), Usage: &telemetry.Usage{}, UI: noUI{}}, nil)
}

// noUI stands for the dashboard (package ui), whose routes errand serve always registers.
type noUI struct{}

func (noUI) Handler(httpapi.Access, http.Handler) http.Handler { return http.NotFoundHandler() }

// TestGolden: the documents for the example configuration and for one with
// every kind of operation, channel and setting (go test ./spec -update
// rewrites them).
func TestGolden(t *testing.T) {
	for name, file := range map[string]string{"example": "../examples/errand.yaml", "full": "testdata/full.yaml"} {
		d, err := Generate(input(t, file))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for ext, b := range map[string][]byte{"openapi.json": d.OpenAPIJSON, "openapi.yaml": d.OpenAPIYAML,
			"asyncapi.json": d.AsyncAPIJSON, "asyncapi.yaml": d.AsyncAPIYAML, "docs.html": d.Page} {
			golden := filepath.Join("testdata", name+"."+ext)
			if *update {
				if err := os.WriteFile(golden, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, _ := os.ReadFile(golden)
			if !bytes.Equal(b, want) {
				t.Errorf("%s differs from %s (go test ./spec -update rewrites it)", ext, golden)
			}
		}
	}
}

// TestYAMLIsTheJSON: each YAML document reads back as its JSON document.
func TestYAMLIsTheJSON(t *testing.T) {
	d, err := Generate(input(t, "testdata/full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2][]byte{{d.OpenAPIJSON, d.OpenAPIYAML}, {d.AsyncAPIJSON, d.AsyncAPIYAML}} {
		var fromJSON, fromYAML any
		if err := yaml.Unmarshal(pair[0], &fromJSON); err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(pair[1], &fromYAML); err != nil {
			t.Fatalf("the YAML does not parse: %v", err)
		}
		if !reflect.DeepEqual(fromJSON, fromYAML) {
			t.Errorf("the YAML document does not read back as the JSON one")
		}
	}
}

// TestRouteCoverage: every route httpapi registers is documented, and every
// documented route is registered.
func TestRouteCoverage(t *testing.T) {
	in := input(t, "testdata/full.yaml")
	for _, p := range in.Routes {
		if _, ok := routes[p]; !ok && !slices.Contains([]string{"POST /generate-report", "POST /notify/email"}, p) {
			t.Errorf("route %q is registered but not documented in spec/routes.go", p)
		}
	}
	for _, p := range Documented() {
		if !slices.Contains(in.Routes, p) {
			t.Errorf("spec/routes.go documents %q, which httpapi does not register", p)
		}
	}
	in.Routes = append(in.Routes, "GET /v1/undocumented")
	if _, err := Generate(in); err == nil {
		t.Errorf("Generate with an undocumented route: no error")
	}
}
