package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/errandhq/errand/auth"
	"github.com/errandhq/errand/bench"
	"github.com/spf13/cobra"
)

// benchKey is the bootstrap API key of the authenticated benchmark server.
const benchKey = "ek_bench_key_for_the_auth_benchmark_000"

// newBenchAuthCmd measures what authentication costs a submit: the submit load
// against a development server (no authentication), then against servers that
// check an API key and errand's own ES256 access token on every request.
func newBenchAuthCmd(stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	var rounds int
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Submit throughput and latency with authentication off, with an API key and with a JWT (ES256), in one run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.server != "" {
				return errors.New("bench auth starts its own servers (with and without authentication); --server is not supported")
			}
			ctx := cmd.Context()
			var results []bench.Result
			var facts map[string]any
			per := map[string]float64{}
			// Rounds alternate the modes, so drift on a shared machine (and the
			// first run's warm-up) does not favour one of them.
			for range rounds {
				for _, mode := range []string{"off", "api key", "jwt"} {
					r, f, err := o.authRun(ctx, stderr, mode)
					if err != nil {
						return fmt.Errorf("%s: %w", mode, err)
					}
					facts = f
					per[mode] += r[0].PerSecond / float64(rounds)
					results = append(results, r...)
				}
			}
			facts["api_key_vs_off"] = fmt.Sprintf("%.2f", per["api key"]/per["off"])
			facts["jwt_vs_off"] = fmt.Sprintf("%.2f", per["jwt"]/per["off"])
			return report(stdout, o.asJSON, facts, results)
		},
	}
	o.flags(cmd)
	cmd.Flags().IntVar(&rounds, "rounds", 2, "how many times to run the three modes, in turn")
	return cmd
}

// authRun starts a server for one mode and runs the submit load at full and at
// half rate.
func (o *benchOptions) authRun(ctx context.Context, stderr io.Writer, mode string) ([]bench.Result, map[string]any, error) {
	run := *o
	if mode != "off" {
		run.auth = fmt.Sprintf("auth:\n  api_keys:\n    - { name: bench, sha256: %s, roles: [admin], tenant: bench }\n", sha256Hex(benchKey))
	}
	base, facts, stop, err := run.target(ctx, stderr, "")
	if err != nil {
		return nil, nil, err
	}
	defer stop()
	h := http.Header{"Content-Type": {"application/json"}}
	switch mode {
	case "api key":
		h.Set("Authorization", "Bearer "+benchKey)
	case "jwt":
		tok, err := clientCredentials(ctx, base, "config:bench", benchKey)
		if err != nil {
			return nil, nil, err
		}
		h.Set("Authorization", "Bearer "+tok)
	}
	l := bench.Load{Name: "submit, auth " + mode + ": full load", URL: base + "/v1/jobs", Header: h,
		Body: []byte(`{"operation":"bench","input":{"type":"monthly"}}`), Concurrency: o.concurrency, Duration: o.duration, WantStatus: 202}
	full := bench.Run(ctx, l)
	half := l
	half.Name, half.Rate = "submit, auth "+mode+": half load", full.PerSecond/2
	return []bench.Result{full, bench.Run(ctx, half)}, facts, nil
}

// sha256Hex is how a configured API key names its token.
func sha256Hex(s string) string { return auth.HashToken(s) }

// clientCredentials gets an access token from errand's token endpoint.
func clientCredentials(ctx context.Context, base, id, secret string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken, nil
}

// benchSchema makes a fresh schema on the PostgreSQL at base for one benchmark
// run and returns its store URL and a function that drops it.
func benchSchema(ctx context.Context, base string) (string, func(), error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	drop := func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			c.Close(context.Background())
		}
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "schema=" + schema, drop, nil
}
