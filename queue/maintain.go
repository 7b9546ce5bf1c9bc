package queue

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/lifecycle"
	"github.com/errandhq/errand/storage"
)

// MaintainConfig tunes the maintainer. The zero value is ready to use.
type MaintainConfig struct {
	// MaxSleep is the longest the maintainer sleeps between checks for expired
	// leases. Defaults to 1 second.
	MaxSleep time.Duration
	// RetentionEvery is how often finished jobs past their retention are deleted.
	// Defaults to 1 minute.
	RetentionEvery time.Duration
	// Batch is the most jobs one maintenance transaction touches. Defaults to 500.
	Batch int
	// Lead reports whether this node does the maintenance: with several nodes
	// on one database only the elected leader does. nil means always.
	Lead func() bool
	// Log hears what failed. Defaults to slog.Default().
	Log *slog.Logger
}

// Maintainer keeps the queue moving: it requeues jobs whose leases expired,
// moves scheduled jobs to the queue when their run_at comes, and deletes finished
// jobs after their retention. It wakes exactly when the next of those is due.
type Maintainer struct {
	q    *Queue
	log  *slog.Logger
	cfg  MaintainConfig
	loop lifecycle.Loop
}

// NewMaintainer returns a stopped maintainer for q.
func NewMaintainer(q *Queue, cfg *MaintainConfig) *Maintainer {
	c := MaintainConfig{}
	if cfg != nil {
		c = *cfg
	}
	c.MaxSleep = cmp.Or(c.MaxSleep, time.Second)
	c.RetentionEvery = cmp.Or(c.RetentionEvery, time.Minute)
	c.Batch = cmp.Or(c.Batch, 500)
	c.Log = cmp.Or(c.Log, slog.Default())
	return &Maintainer{q: q, log: c.Log, cfg: c}
}

// Start runs the maintainer until Stop.
func (m *Maintainer) Start(ctx context.Context) error {
	m.loop.Go(ctx, m.run)
	return nil
}

// Stop ends the maintainer and waits for its current pass, or for ctx.
func (m *Maintainer) Stop(ctx context.Context) error { return m.loop.Halt(ctx) }

func (m *Maintainer) run(ctx context.Context) {
	var nextRetention time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.q.signal.scheduled:
		}
		if m.cfg.Lead != nil && !m.cfg.Lead() {
			timer.Reset(m.cfg.MaxSleep)
			continue
		}
		now := m.q.cfg.Now()
		m.Pass(ctx, now)
		if !now.Before(nextRetention) {
			if _, err := m.Clean(ctx, now); err != nil && ctx.Err() == nil {
				m.log.Error("retention cleaner", "err", err)
			}
			if nextRetention.IsZero() { // once, at start: orphans only come from a crash
				if _, err := m.SweepArtifacts(ctx); err != nil && ctx.Err() == nil {
					m.log.Error("artifact sweep", "err", err)
				}
			}
			nextRetention = now.Add(m.cfg.RetentionEvery)
		}
		timer.Reset(m.sleep(ctx, now))
	}
}

// sleep is how long until the next scheduled job or lease expiry, at most MaxSleep.
func (m *Maintainer) sleep(ctx context.Context, now time.Time) time.Duration {
	d := m.cfg.MaxSleep
	runAt, leaseEnd, err := m.q.store.NextWakeup(ctx)
	if err != nil {
		return d
	}
	for _, t := range []time.Time{runAt, leaseEnd} {
		if !t.IsZero() {
			d = min(d, t.Sub(now)+time.Millisecond)
		}
	}
	return max(d, time.Millisecond)
}

// Pass requeues expired leases and promotes due scheduled jobs, as of now.
func (m *Maintainer) Pass(ctx context.Context, now time.Time) {
	for {
		n, err := m.reap(ctx, now)
		if err != nil && ctx.Err() == nil {
			m.log.Error("lease reaper", "err", err)
		}
		if err != nil || n < m.cfg.Batch {
			break
		}
	}
	for {
		n, err := m.promote(ctx, now)
		if err != nil && ctx.Err() == nil {
			m.log.Error("scheduler", "err", err)
		}
		if err != nil || n < m.cfg.Batch {
			break
		}
	}
}

// reap ends attempts whose lease expired (or that ran past their timeout).
func (m *Maintainer) reap(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := m.q.store.WithTx(ctx, func(tx storage.Tx) error {
		jobs, err := tx.ExpiredLeases(now, m.cfg.Batch)
		if err != nil {
			return err
		}
		n = len(jobs)
		for _, j := range jobs {
			if err := m.q.expire(tx, j, now.UTC()); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// promote queues scheduled jobs whose run_at has come.
func (m *Maintainer) promote(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := m.q.store.WithTx(ctx, func(tx storage.Tx) error {
		jobs, err := tx.DueScheduled(now, m.cfg.Batch)
		if err != nil {
			return err
		}
		n = len(jobs)
		for _, j := range jobs {
			if err := job.Record(tx, j, job.Promote(j), now); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// Clean deletes finished jobs whose retention ended before now, with their
// events and artifacts; it returns how many.
func (m *Maintainer) Clean(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		var ids []string
		err := m.q.store.WithTx(ctx, func(tx storage.Tx) error {
			var err error
			if ids, err = tx.ExpiredJobs(now, m.cfg.Batch); err != nil {
				return err
			}
			for _, id := range ids {
				if err := tx.DeleteJob(id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += len(ids)
		if a := m.q.cfg.Artifacts; a != nil {
			for _, id := range ids {
				if err := a.DeleteJob(ctx, id); err != nil {
					m.log.Warn("retention: artifacts", "job", id, "err", err)
				}
			}
		}
		if len(ids) < m.cfg.Batch {
			return total, m.expireEvents(ctx, now)
		}
	}
}

// expireEvents deletes channel events past their channel's history.
func (m *Maintainer) expireEvents(ctx context.Context, now time.Time) error {
	for {
		var n int
		err := m.q.store.WithTx(ctx, func(tx storage.Tx) error {
			var err error
			n, err = tx.ExpireEvents(now, m.cfg.Batch)
			return err
		})
		if err != nil || n < m.cfg.Batch {
			return err
		}
	}
}

// SweepArtifacts deletes the artifacts of jobs that no longer exist (left behind
// when errand stopped between deleting a job and deleting its files). The
// maintainer runs it once when it starts.
func (m *Maintainer) SweepArtifacts(ctx context.Context) (int, error) {
	a := m.q.cfg.Artifacts
	if a == nil {
		return 0, nil
	}
	ids, err := a.Jobs(ctx)
	if err != nil {
		return 0, err
	}
	var gone []string
	err = m.q.store.WithTx(ctx, func(tx storage.Tx) error {
		gone = gone[:0]
		for _, id := range ids {
			if _, err := tx.GetJob(id); errors.Is(err, storage.ErrNotFound) {
				gone = append(gone, id)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	for _, id := range gone {
		if err := a.DeleteJob(ctx, id); err != nil {
			return 0, err
		}
	}
	return len(gone), err
}
