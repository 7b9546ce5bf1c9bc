package main

import (
	"fmt"
	"github.com/errandhq/errand/bridge"
	"io"
	"net/http"

	"github.com/errandhq/errand/audit"
	"github.com/errandhq/errand/auth"
	"github.com/errandhq/errand/config"
	"github.com/errandhq/errand/graphql"
	"github.com/errandhq/errand/httpapi"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/spec"
	"github.com/errandhq/errand/telemetry"
	"github.com/errandhq/errand/ui"
	"github.com/errandhq/errand/webhook"
	"github.com/spf13/cobra"
)

func newSpecCmd(getenv func(string) string, stdout io.Writer) *cobra.Command {
	var file, format string
	cmd := &cobra.Command{
		Use:       "spec openapi|asyncapi",
		Short:     "Print the OpenAPI 3.1 or AsyncAPI 3.0 document a configuration serves (no server needed)",
		Long:      "Print the document errand serve would serve at /v1/openapi.json or /v1/asyncapi.json for the configuration,\nto commit and diff in review, or to generate clients from. The servers' URL is http.public_url, else http://<listen>.",
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"openapi", "asyncapi"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "json" && format != "yaml" {
				return fmt.Errorf("--format must be json or yaml, not %q", format)
			}
			cfg, err := loadConfig(cmd, file, getenv)
			if err != nil {
				return err
			}
			routes, err := specRoutes(cfg)
			if err != nil {
				return err
			}
			// The bridges as configured (nothing connects): their servers and routes.
			bridges, err := bridge.New(bridge.Deps{Dialers: dialers()}, cfg.BridgeList())
			if err != nil {
				return err
			}
			d, err := spec.Generate(spec.Input{Config: cfg, Routes: routes, Version: buildVersion(),
				Extensions: []spec.Extension{graphQLContract(), bridgeContract(bridges.AsyncAPI())}})
			if err != nil {
				return err
			}
			out := map[string][]byte{"openapi json": d.OpenAPIJSON, "openapi yaml": d.OpenAPIYAML,
				"asyncapi json": d.AsyncAPIJSON, "asyncapi yaml": d.AsyncAPIYAML}[args[0]+" "+format]
			_, err = stdout.Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "configuration file (default errand.yaml when it exists; or ERRAND_CONFIG)")
	cmd.Flags().StringVar(&format, "format", "json", "json or yaml")
	return cmd
}

// specRoutes are the routes errand serve registers for cfg, without a store:
// the route table reads the operations (for their own routes) and whether
// webhooks, auth and the audit log are served, which errand serve always
// does; none of these values is called.
func specRoutes(cfg *config.Config) ([]string, error) {
	jobs, err := job.NewService(nil, nil, cfg.OperationList(), nil)
	if err != nil {
		return nil, err
	}
	d := httpapi.Deps{Jobs: jobs, Webhooks: &webhook.Service{}, Auth: &auth.Authenticator{},
		Audit: &audit.Log{}, Contracts: &spec.Server{}, GraphQL: &graphql.Server{}, UI: &ui.Dashboard{}}
	if cfg.Metrics.On() && cfg.Metrics.Listen == "" {
		d.Metrics = http.NotFoundHandler()
	}
	if cfg.Usage.On() {
		d.Usage = &telemetry.Usage{}
	}
	return httpapi.Routes(d, &httpapi.Config{Dev: cfg.Dev}), nil
}
