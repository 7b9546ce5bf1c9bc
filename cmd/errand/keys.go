package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/audit"
	"github.com/errandhq/errand/auth"
	"github.com/errandhq/errand/client"
	"github.com/errandhq/errand/config"
	"github.com/spf13/cobra"
)

// newKeysCmd manages API keys on the store directly, as the operator: this is
// how the first key is made, before anyone can call the API.
func newKeysCmd(getenv func(string) string, stdout io.Writer) *cobra.Command {
	var file string
	cmd := &cobra.Command{Use: "keys", Short: "Create, list and revoke API keys (on the store, as the operator)"}
	cmd.PersistentFlags().StringVar(&file, "config", "", "configuration file (default errand.yaml when it exists; or ERRAND_CONFIG)")
	cmd.PersistentFlags().String("store", "", "store URL (default from the configuration)")
	var record func(action string, k *errand.APIKey) error
	withAuth := func(cmd *cobra.Command, fn func(context.Context, *auth.Authenticator) error) error {
		cfg, err := loadConfig(cmd, file, getenv)
		if err != nil {
			return err
		}
		b, err := openStore(cmd.Context(), cfg, slog.New(slog.DiscardHandler), 0)
		if err != nil {
			return err
		}
		defer b.close()
		store := b.store
		a, err := newAuth(store, cfg, nil)
		if err != nil {
			return err
		}
		log, err := audit.New(store, nil)
		if err != nil {
			return err
		}
		_ = log.Start(cmd.Context())
		defer log.Stop(context.WithoutCancel(cmd.Context()))
		record = func(action string, k *errand.APIKey) error {
			// The operator's acts on the command line are on record like the API's.
			return log.Write(cmd.Context(), errand.AuditEntry{Tenant: k.Tenant, Subject: "cli:" + operator(),
				Action: action, Resource: k.ID, Outcome: errand.AuditOK, Detail: "name=" + k.Name})
		}
		return fn(cmd.Context(), a)
	}
	var in auth.KeyInput
	var expires string
	create := &cobra.Command{
		Use:   "create",
		Short: "Make a key; its token is printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if expires != "" {
				d, err := config.ParseDuration(expires)
				if err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
				in.ExpiresIn = d
			}
			return withAuth(cmd, func(ctx context.Context, a *auth.Authenticator) error {
				k, token, err := a.CreateKey(ctx, nil, in)
				if err != nil {
					return describe(err)
				}
				if err := record("keys:create", k); err != nil {
					return err
				}
				_, err = fmt.Fprintf(stdout, "%s\n\nid:      %s\nname:    %s\ntenant:  %s\nroles:   %v\n\n"+
					"The token is shown only now. Use it as Authorization: Bearer, or as the\n"+
					"OAuth client secret with client id %s.\n", token, k.ID, k.Name, k.Tenant, k.Roles, k.ID)
				return err
			})
		},
	}
	create.Flags().StringVar(&in.Name, "name", "", "what the key is for (required)")
	create.Flags().StringVar(&in.Tenant, "tenant", "", "the tenant the key acts in (required)")
	create.Flags().StringSliceVar(&in.Roles, "role", nil, "a role from auth.roles, or admin (repeat for more)")
	create.Flags().StringVar(&expires, "expires", "", "end the key after this long (like 720h or 90d); default never")
	list := &cobra.Command{
		Use:   "list",
		Short: "List keys (every tenant's)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAuth(cmd, func(ctx context.Context, a *auth.Authenticator) error {
				keys, err := a.ListKeys(ctx, nil)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tTENANT\tROLES\tPREFIX\tLAST USED\tSTATE")
				for _, k := range keys {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s…\t%s\t%s\n", k.ID, k.Name, k.Tenant, k.Roles, k.Prefix,
						when(k.LastUsed), keyState(k))
				}
				return tw.Flush()
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a key (at once here; within 10 s on running servers)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAuth(cmd, func(ctx context.Context, a *auth.Authenticator) error {
				k, err := a.RevokeKey(ctx, nil, args[0])
				if err != nil {
					return describe(err)
				}
				if err := record("keys:revoke", k); err != nil {
					return err
				}
				_, err = fmt.Fprintf(stdout, "revoked %s (%s)\n", k.ID, k.Name)
				return err
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// describe spells out an application error's fields for the terminal.
func describe(err error) error {
	e, ok := err.(*errand.Error)
	if !ok || len(e.Fields) == 0 {
		return err
	}
	msg := e.Message
	for _, f := range e.Fields {
		msg += "\n  " + f.Pointer + ": " + f.Message
	}
	return fmt.Errorf("%s", msg)
}

func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func keyState(k *errand.APIKey) string {
	switch {
	case k.RevokedAt != nil:
		return "revoked " + when(k.RevokedAt)
	case k.ExpiresAt != nil && !time.Now().Before(*k.ExpiresAt):
		return "expired"
	}
	return "active"
}

// newAuditCmd reads the audit log over the API.
func newAuditCmd(f *clientFlags, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit log"}
	var o client.AuditOptions
	var follow bool
	var every time.Duration
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print the latest audit entries; with -f, keep printing new ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			page, err := c.Audit(cmd.Context(), o)
			if err != nil {
				return err
			}
			last := "0"
			for i := len(page.Entries) - 1; i >= 0; i-- { // newest first → print oldest first
				if err := f.printEntry(stdout, page.Entries[i]); err != nil {
					return err
				}
			}
			if len(page.Entries) > 0 {
				last = fmt.Sprint(page.Entries[0].Seq)
			}
			for follow {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(every):
				}
				q := o
				q.After, q.Limit = last, 1000
				page, err := c.Audit(cmd.Context(), q)
				if err != nil {
					return err
				}
				for _, e := range page.Entries {
					if err := f.printEntry(stdout, e); err != nil {
						return err
					}
				}
				last = page.NextCursor
			}
			return nil
		},
	}
	tail.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new entries")
	tail.Flags().DurationVar(&every, "interval", time.Second, "how often to look for new entries with -f")
	tail.Flags().IntVarP(&o.Limit, "lines", "n", 20, "how many of the latest entries to print first")
	tail.Flags().StringVar(&o.Action, "action", "", "only this action (a trailing * matches a prefix)")
	tail.Flags().StringVar(&o.Subject, "subject", "", "only this subject")
	tail.Flags().StringVar(&o.Outcome, "outcome", "", "only this outcome: ok, denied or failed")
	cmd.AddCommand(tail)
	return cmd
}

// printEntry writes one entry as a line (or a JSON line with -o json).
func (f *clientFlags) printEntry(w io.Writer, e *errand.AuditEntry) error {
	if f.output == "json" {
		return jsonLine(w, e)
	}
	who := e.Subject
	if who == "" {
		who = "-"
	} else if e.Tenant != "" {
		who = e.Tenant + "/" + e.Subject
	}
	_, err := fmt.Fprintf(w, "%s  %-6s %3d  %-22s %-28s %s  %s\n", e.Time.UTC().Format(time.RFC3339), e.Outcome, e.Status,
		who, e.Action, e.Resource, e.Detail)
	return err
}

func jsonLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// operator names who runs the command, for the audit log.
func operator() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

// newMigrateCmd applies the store's migrations and says where the schema is:
// run it once ahead of a rolling deploy, so new nodes do not race to migrate.
func newMigrateCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the store's schema migrations (before a rolling deploy)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd, file, getenv)
			if err != nil {
				return err
			}
			b, err := openStore(cmd.Context(), cfg, newLogger(cfg, stderr), time.Minute)
			if err != nil {
				return err
			}
			defer b.close()
			v, err := b.store.(interface {
				SchemaVersion(context.Context) (int, error)
			}).SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "schema at migration %04d\n", v)
			return err
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "configuration file (default errand.yaml when it exists; or ERRAND_CONFIG)")
	cmd.Flags().String("store", "", "store URL (default from the configuration; or ERRAND_DATABASE_URL)")
	return cmd
}
