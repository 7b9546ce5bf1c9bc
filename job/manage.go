package job

import (
	"context"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// Cancel cancels a job that has not started; a running job is asked to stop
// (cancel_requested), which its worker learns on its next heartbeat.
func (s *Service) Cancel(ctx context.Context, p errand.Principal, id string) (*errand.Job, error) {
	return s.change(ctx, p, errand.PermJobsCancel, id, func(tx storage.Tx, j *errand.Job) error {
		now := s.cfg.Now().UTC()
		st, err := Cancel(j, s.operation(j.Operation), now)
		if err != nil {
			return err
		}
		return Record(tx, j, st, now)
	})
}

// Retry runs a failed or canceled job again, as a new attempt.
func (s *Service) Retry(ctx context.Context, p errand.Principal, id string) (*errand.Job, error) {
	return s.change(ctx, p, errand.PermJobsRetry, id, func(tx storage.Tx, j *errand.Job) error {
		now := s.cfg.Now().UTC()
		st, err := Retry(j, now)
		if err != nil {
			return err
		}
		return Record(tx, j, st, now)
	})
}

// Delete forgets a finished job, its events and its artifacts.
func (s *Service) Delete(ctx context.Context, p errand.Principal, id string) error {
	_, err := s.change(ctx, p, errand.PermJobsDelete, id, func(tx storage.Tx, j *errand.Job) error {
		if !j.Status.Terminal() {
			return errand.Errorf(errand.ENOTTERMINAL, "job %s is %s; cancel it first", j.ID, j.Status)
		}
		return tx.DeleteJob(j.ID)
	})
	if err == nil && s.cfg.Artifacts != nil {
		// After the commit: a crash in between leaves files the sweep removes.
		err = s.cfg.Artifacts.DeleteJob(ctx, id)
	}
	return err
}

// change loads a job of the principal's tenant in a transaction and, if the
// principal may do action on it, applies fn. A job of another tenant, or one the
// principal may not even read, is not found.
func (s *Service) change(ctx context.Context, p errand.Principal, action, id string, fn func(storage.Tx, *errand.Job) error) (*errand.Job, error) {
	var out *errand.Job
	err := s.store.WithTx(ctx, func(tx storage.Tx) error {
		j, err := tx.GetJob(id)
		if err == storage.ErrNotFound {
			return errand.Errorf(errand.EJOBNOTFOUND, "job %q does not exist", errand.Truncate(id, 64))
		}
		if err != nil {
			return err
		}
		switch {
		case j.Tenant != p.Tenant, !p.CanOnJob(action, j) && !p.CanOnJob(errand.PermJobsRead, j):
			return hidden(action, id)
		case !p.CanOnJob(action, j):
			return errand.Deny(action, id)
		}
		out = j
		return fn(tx, j)
	})
	return out, err
}

// operation is the declared operation of a stored job; one no longer declared
// gets the defaults.
func (s *Service) operation(name string) errand.Operation {
	if e, ok := s.ops[name]; ok {
		return e.op
	}
	return errand.Operation{Name: name}.WithDefaults()
}
