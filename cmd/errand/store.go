package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/artifact"
	"github.com/errandhq/errand/bridge"
	"github.com/errandhq/errand/config"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/postgres"
	"github.com/errandhq/errand/storage/sqlite"
)

// backing is an open store with the artifact store and leadership that go with it.
type backing struct {
	store     storage.Store
	artifacts artifact.Store
	// lead says whether this node runs the once-per-cluster background work;
	// nil (SQLite: one node) means always.
	lead   func() bool
	leader *postgres.Leader
	// elect makes the elector of a bridge route; nil (SQLite) runs every route here.
	elect func(name string) bridge.Elector
	close func()
}

// isPostgres reports whether a store URL names PostgreSQL.
func isPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// openStore opens the configured store. An unreachable PostgreSQL is retried
// (with the reason logged) for up to wait before giving up. obs (optional)
// hears the store's commits.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger, wait time.Duration, obs ...storage.Observer) (*backing, error) {
	var o storage.Observer
	if len(obs) > 0 {
		o = obs[0]
	}
	if !isPostgres(cfg.Store) {
		return openSQLite(ctx, cfg, log, o)
	}
	dsn, pcfg, err := postgres.ParseURL(cfg.Store)
	if err != nil {
		return nil, err
	}
	pcfg.Observer = o
	deadline := time.Now().Add(wait)
	var s *postgres.Store
	for backoff := 500 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		if s, err = postgres.Open(ctx, dsn, pcfg); err == nil {
			break
		}
		if errand.ErrorCode(err) != errand.EUNAVAILABLE || time.Now().Add(backoff).After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("open PostgreSQL: %w", errors.Join(err, ctx.Err()))
		}
		log.Warn("PostgreSQL does not answer; retrying", "in", backoff.String(), "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
	b := &backing{store: s, close: func() { s.Close() }}
	if cfg.Artifacts.Dir != "" { // a volume every node mounts
		fs, err := artifact.OpenFS(cfg.Artifacts.Dir)
		if err != nil {
			s.Close()
			return nil, err
		}
		b.artifacts, b.close = fs, func() { fs.Close(); s.Close() }
	} else {
		b.artifacts = s.Artifacts()
	}
	b.leader = s.Leader(&postgres.LeaderConfig{Log: log})
	b.lead = b.leader.IsLeader
	b.elect = func(name string) bridge.Elector { return s.Leader(&postgres.LeaderConfig{Name: name, Log: log}) }
	return b, nil
}

func openSQLite(ctx context.Context, cfg *config.Config, log *slog.Logger, obs storage.Observer) (*backing, error) {
	path, scfg, err := sqlite.ParseURL(cfg.Store)
	if err != nil {
		return nil, err
	}
	scfg.Log, scfg.Observer = log, obs
	s, err := sqlite.Open(ctx, path, scfg)
	if err != nil {
		return nil, err
	}
	fs, err := artifact.OpenFS(cmp.Or(cfg.Artifacts.Dir, filepath.Join(filepath.Dir(path), "artifacts")))
	if err != nil {
		s.Close()
		return nil, err
	}
	return &backing{store: s, artifacts: fs, close: func() { fs.Close(); s.Close() }}, nil
}
