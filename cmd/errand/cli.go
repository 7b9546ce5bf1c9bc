package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/client"
	"github.com/spf13/cobra"
)

// clientFlags are the flags every command that talks to a server shares.
type clientFlags struct {
	server string
	token  string
	output string
}

func (f *clientFlags) add(cmd *cobra.Command, getenv func(string) string) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.server, "server", or(getenv("ERRAND_URL"), "http://127.0.0.1:8080"), "errand server URL (or ERRAND_URL)")
	fl.StringVar(&f.token, "token", getenv("ERRAND_TOKEN"), "bearer token (or ERRAND_TOKEN)")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (f *clientFlags) client() (*client.Client, error) {
	if f.output != "table" && f.output != "json" {
		return nil, fmt.Errorf("--output must be table or json, not %q", f.output)
	}
	return client.New(f.server, client.WithToken(f.token)), nil
}

// print writes v as JSON, or as a table with the given renderer.
func (f *clientFlags) print(w io.Writer, v any, table func(*tabwriter.Writer)) error {
	if f.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// jobTable prints jobs one a line.
func jobTable(jobs ...*errand.Job) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tOPERATION\tSTATUS\tATTEMPT\tPROGRESS\tCREATED")
		for _, j := range jobs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.Operation, j.Status, j.Attempt, j.MaxAttempts,
				progressText(j), j.CreatedAt.Format(time.RFC3339))
		}
	}
}

// jobDetail prints one job with its result or error.
func jobDetail(j *errand.Job) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		row := func(k, v string) {
			if v != "" {
				fmt.Fprintf(tw, "%s:\t%s\n", k, v)
			}
		}
		row("id", j.ID)
		row("operation", j.Operation)
		row("status", string(j.Status))
		row("attempt", fmt.Sprintf("%d of %d", j.Attempt, j.MaxAttempts))
		row("progress", progressText(j))
		row("input", string(j.Input))
		if len(j.Result) > 0 && string(j.Result) != "null" {
			row("result", string(j.Result))
		}
		if j.Error != nil {
			row("error", j.Error.Code+": "+j.Error.Detail)
		}
		for _, a := range j.Artifacts {
			row("artifact", fmt.Sprintf("%s (%s, %d bytes) %s", a.Name, a.ContentType, a.Size, a.URL))
		}
		row("created", j.CreatedAt.Format(time.RFC3339))
		if j.FinishedAt != nil {
			row("finished", j.FinishedAt.Format(time.RFC3339))
		}
	}
}

// progressText is a job's progress; a succeeded job is at 100 % whatever it last said.
func progressText(j *errand.Job) string {
	switch {
	case j.Status == errand.StatusSucceeded:
		return "100%"
	case j.Progress == nil:
		return "-"
	}
	return strings.TrimSpace(fmt.Sprintf("%.0f%% %s", j.Progress.Percent, j.Progress.Message))
}

func newSubmitCmd(f *clientFlags, stdin io.Reader, stdout io.Writer) *cobra.Command {
	var data, key string
	var wait, delay time.Duration
	var priority, attempts int
	cmd := &cobra.Command{
		Use:   "submit <operation>",
		Short: "Submit a job: prints it at once, or its result with --wait",
		Example: `  errand submit generate-report --data '{"type":"monthly"}'
  errand submit generate-report --data @input.json --wait 30s
  echo '{"type":"weekly"}' | errand submit generate-report --data -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			input, err := readData(data, stdin)
			if err != nil {
				return err
			}
			j, err := c.Submit(cmd.Context(), args[0], input, &client.SubmitOptions{IdempotencyKey: key, Wait: wait,
				Delay: delay, Priority: priority, MaxAttempts: attempts})
			if err != nil {
				return err
			}
			return f.print(stdout, j.Job, jobDetail(j.Job))
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&data, "data", "d", "", "the input: JSON, @file, or - for standard input")
	fl.StringVar(&key, "idempotency-key", "", "repeat-safe key: the same key and input return the first job")
	fl.DurationVar(&wait, "wait", 0, "wait up to this long for the result")
	fl.DurationVar(&delay, "delay", 0, "run no sooner than this from now")
	fl.IntVar(&priority, "priority", 0, "higher runs first (-1000 to 1000)")
	fl.IntVar(&attempts, "max-attempts", 0, "attempts in all (default: the operation's)")
	return cmd
}

// readData reads --data: inline JSON, @file or - (stdin).
func readData(data string, stdin io.Reader) (json.RawMessage, error) {
	var b []byte
	var err error
	switch {
	case data == "":
		return nil, nil
	case data == "-":
		b, err = io.ReadAll(stdin)
	case strings.HasPrefix(data, "@"):
		b, err = os.ReadFile(data[1:])
	default:
		b = []byte(data)
	}
	if err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("--data is not valid JSON")
	}
	return json.RawMessage(b), nil
}

func newJobsCmd(f *clientFlags, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "jobs", Short: "List, read, watch, cancel, retry and delete jobs"}
	var lo client.ListOptions
	var status string
	list := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			lo.Status = errand.Status(status)
			page, err := c.List(cmd.Context(), lo)
			if err != nil {
				return err
			}
			return f.print(stdout, page, func(tw *tabwriter.Writer) {
				jobTable(page.Jobs...)(tw)
				if page.NextCursor != nil {
					fmt.Fprintf(tw, "\nmore: --cursor %s\n", *page.NextCursor)
				}
			})
		},
	}
	list.Flags().StringVar(&lo.Operation, "operation", "", "only this operation")
	list.Flags().StringVar(&status, "status", "", "only this status (queued, scheduled, running, succeeded, failed, canceled)")
	list.Flags().IntVar(&lo.Limit, "limit", 20, "jobs per page")
	list.Flags().StringVar(&lo.Cursor, "cursor", "", "the page after this cursor")
	one := func(use, short string, do func(*client.Client, context.Context, string) (*errand.Job, error)) *cobra.Command {
		return &cobra.Command{Use: use + " <job-id>", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := f.client()
				if err != nil {
					return err
				}
				j, err := do(c, cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if j == nil {
					fmt.Fprintf(stdout, "deleted %s\n", args[0])
					return nil
				}
				return f.print(stdout, j, jobDetail(j))
			}}
	}
	cmd.AddCommand(list,
		one("get", "Show a job", (*client.Client).Get),
		one("cancel", "Cancel a job (a running one is asked to stop)", (*client.Client).Cancel),
		one("retry", "Run a failed or canceled job again", (*client.Client).Retry),
		one("delete", "Forget a finished job, its events and artifacts", func(c *client.Client, ctx context.Context, id string) (*errand.Job, error) {
			return nil, c.Delete(ctx, id)
		}),
		newWatchCmd(f, stdout, stderr))
	return cmd
}

func newOperationsCmd(f *clientFlags, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "operations", Short: "What may be submitted"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the declared operations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var out struct {
				Operations []struct {
					Name        string  `json:"name"`
					Description string  `json:"description"`
					Route       string  `json:"route"`
					Handler     string  `json:"handler"`
					Timeout     int     `json:"timeout_seconds"`
					Attempts    int     `json:"max_attempts"`
					Wait        float64 `json:"wait_seconds"`
				} `json:"operations"`
			}
			if _, err := c.Do(cmd.Context(), "GET", "/v1/operations", nil, nil, &out); err != nil {
				return err
			}
			return f.print(stdout, out, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tHANDLER\tROUTE\tTIMEOUT\tATTEMPTS\tDESCRIPTION")
				for _, o := range out.Operations {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", o.Name, o.Handler, or(o.Route, "-"),
						time.Duration(o.Timeout)*time.Second, o.Attempts, o.Description)
				}
			})
		},
	})
	cmd.AddCommand(newPauseCmd(f, stdout, "pause", "Pause an operation's leases on every node (submits are still accepted)"),
		newPauseCmd(f, stdout, "resume", "Resume a paused operation's leases"))
	return cmd
}

// newPauseCmd is `errand operations pause NAME` or `resume NAME`.
func newPauseCmd(f *clientFlags, stdout io.Writer, verb, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var out struct {
				Name    string `json:"name"`
				Paused  bool   `json:"paused"`
				Running int    `json:"running"`
			}
			if _, err := c.Do(cmd.Context(), "POST", "/v1/operations/"+url.PathEscape(args[0])+"/"+verb, nil, nil, &out); err != nil {
				return err
			}
			return f.print(stdout, out, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tPAUSED\tRUNNING")
				fmt.Fprintf(tw, "%s\t%t\t%d\n", out.Name, out.Paused, out.Running)
			})
		},
	}
}
