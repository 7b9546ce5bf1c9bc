package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/artifact"
	"github.com/errandhq/errand/storage/postgres"
	"github.com/errandhq/errand/storage/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
)

// copyTables are copied in this order (tickets are not: they live a minute).
var copyTables = []string{"jobs", "events", "stream_floors", "settings", "webhook_endpoints",
	"webhook_deliveries", "webhook_attempts", "api_keys", "audit_log"}

// boolColumns are INTEGER 0/1 in SQLite and BOOLEAN in PostgreSQL.
var boolColumns = map[string]bool{"jobs.cancel_requested": true, "webhook_endpoints.disabled": true}

// newCopyCmd copies a SQLite store into an empty PostgreSQL one: the upgrade
// path from one node to several. Stop the errand that uses the SQLite file first.
func newCopyCmd(stdout, stderr io.Writer) *cobra.Command {
	var from, to, artifactsDir string
	cmd := &cobra.Command{
		Use:   "copy",
		Short: "Copy a SQLite store (jobs, events, webhooks, keys, audit log, artifacts) into an empty PostgreSQL store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return copyStore(cmd.Context(), from, to, artifactsDir, stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the SQLite store, sqlite://path (required)")
	f.StringVar(&to, "to", "", "the PostgreSQL store, postgres://… (required; migrated, must hold no jobs)")
	f.StringVar(&artifactsDir, "artifacts", "", "the SQLite store's artifact directory (default: artifacts beside the file)")
	return cmd
}

func copyStore(ctx context.Context, from, to, artifactsDir string, out io.Writer) error {
	path, _, err := sqlite.ParseURL(from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	dsn, pcfg, err := postgres.ParseURL(to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	src, err := sqlite.Open(ctx, path, nil) // migrates it to this errand's schema first
	if err != nil {
		return err
	}
	src.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		return err
	}
	defer db.Close()
	dst, err := postgres.Open(ctx, dsn, pcfg)
	if err != nil {
		return err
	}
	defer dst.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if pcfg.Schema != "" {
		if _, err := conn.Exec(ctx, "SET search_path TO "+pcfg.Schema); err != nil {
			return err
		}
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&n); err != nil || n > 0 {
		return fmt.Errorf("the PostgreSQL store must be empty (it holds %d jobs; %v)", n, err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, t := range copyTables {
			n, err := copyTable(ctx, db, tx, t)
			if err != nil {
				return fmt.Errorf("copy %s: %w", t, err)
			}
			fmt.Fprintf(out, "%-20s %d rows\n", t, n)
		}
		for _, t := range []string{"events", "audit_log"} { // cursors go on from where they were
			if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('`+t+`', 'seq'), greatest((SELECT max(seq) FROM `+t+`), 1))`); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fs, err := artifact.OpenFS(cmp.Or(artifactsDir, filepath.Join(filepath.Dir(path), "artifacts")))
	if err != nil {
		return err
	}
	defer fs.Close()
	files, err := copyArtifacts(ctx, fs, dst.Artifacts(), db)
	fmt.Fprintf(out, "%-20s %d files\n", "artifacts", files)
	return err
}

// copyTable streams one table with COPY; columns are matched by name.
func copyTable(ctx context.Context, db *sql.DB, tx pgx.Tx, table string) (int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT * FROM `+table)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	var data [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, err
		}
		for i, c := range cols {
			if boolColumns[table+"."+c] {
				vals[i] = vals[i] != nil && vals[i].(int64) != 0
			}
		}
		data = append(data, vals)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(data))
}

// copyArtifacts stores every file of every job that still exists.
func copyArtifacts(ctx context.Context, from *artifact.FS, to artifact.Store, db *sql.DB) (int, error) {
	jobs, err := from.Jobs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range jobs {
		var raw []byte
		if err := db.QueryRowContext(ctx, `SELECT artifacts FROM jobs WHERE id = ?`, id).Scan(&raw); err != nil {
			continue // an orphan: its job is gone
		}
		for _, name := range artifactNames(raw) {
			f, err := from.Open(ctx, id, name)
			if err != nil {
				return n, err
			}
			_, _, err = to.Put(ctx, id, name, f, 1<<40)
			f.Close()
			if err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func artifactNames(raw []byte) []string {
	var as []errand.Artifact
	_ = json.Unmarshal(raw, &as) // NULL or empty: none
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.Name
	}
	return names
}
