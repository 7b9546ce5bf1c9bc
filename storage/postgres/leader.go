package postgres

import (
	"cmp"
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand/lifecycle"
	"github.com/jackc/pgx/v5"
)

// Leader elects one node for the background work that needs doing once: the
// lease reaper, the scheduler, the retention cleaners and the webhook sweeper
// (all claim rows with SKIP LOCKED, so two leaders at once would only repeat
// work, never corrupt it). The leader holds a session advisory lock on a
// connection of its own; when the node dies, its connection does and the
// lock is free for the next node, which tries every Retry.
type Leader struct {
	s     *Store
	key   int64
	name  string
	retry time.Duration
	log   *slog.Logger
	is    atomic.Bool
	loop  lifecycle.Loop
}

// LeaderConfig tunes the elector. The zero value is ready to use.
type LeaderConfig struct {
	// Name is what the nodes elect a leader for; each name has its own lock
	// (in this store's schema) and its own leader. Defaults to "leader", the
	// maintenance work; a broker bridge's routes each elect one
	// ("bridge:<name>/<route>").
	Name string
	// Retry is how often a follower tries to take over (and a leader checks
	// its connection). Defaults to 2 seconds.
	Retry time.Duration
	// Log hears leadership taken and lost. Defaults to slog.Default().
	Log *slog.Logger
}

// Leader returns this node's elector; Start begins campaigning.
func (s *Store) Leader(cfg *LeaderConfig) *Leader {
	var c LeaderConfig
	if cfg != nil {
		c = *cfg
	}
	c.Retry = cmp.Or(c.Retry, 2*time.Second)
	c.Log = cmp.Or(c.Log, slog.Default())
	c.Name = cmp.Or(c.Name, "leader")
	return &Leader{s: s, key: s.lockKey(c.Name), name: c.Name, retry: c.Retry, log: c.Log}
}

// IsLeader reports whether this node leads now.
func (l *Leader) IsLeader() bool { return l.is.Load() }

// Start campaigns until Stop.
func (l *Leader) Start(ctx context.Context) error {
	l.loop.Go(ctx, l.run)
	return nil
}

// Stop gives up leadership (closing its connection frees the lock at once).
func (l *Leader) Stop(ctx context.Context) error { return l.loop.Halt(ctx) }

func (l *Leader) run(ctx context.Context) {
	var conn *pgx.Conn
	defer func() {
		l.is.Store(false)
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		var err error
		if conn == nil {
			conn, err = pgx.ConnectConfig(ctx, l.s.pool.Config().ConnConfig.Copy())
			if err != nil {
				conn = nil
			}
		}
		if conn != nil {
			err = l.check(ctx, conn)
			if err != nil {
				conn.Close(context.Background())
				conn = nil
			}
		}
		if err != nil && l.is.Swap(false) && ctx.Err() == nil {
			l.log.Warn("lost leadership", "for", l.name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.retry):
		}
	}
}

// check takes the lock if free, or confirms this connection still holds it.
func (l *Leader) check(ctx context.Context, conn *pgx.Conn) error {
	cctx, cancel := context.WithTimeout(ctx, l.retry)
	defer cancel()
	if l.is.Load() {
		return conn.Ping(cctx)
	}
	var got bool
	if err := conn.QueryRow(cctx, `SELECT pg_try_advisory_lock($1)`, l.key).Scan(&got); err != nil {
		return err
	}
	if got {
		l.is.Store(true)
		if l.name == "leader" {
			l.log.Info("leading: running the lease reaper, scheduler, retention and webhook sweeper")
		} else {
			l.log.Info("leading", "for", l.name)
		}
	}
	return nil
}
