package postgres

import (
	"context"

	"github.com/errandhq/errand/storage"
	"github.com/jackc/pgx/v5"
)

// Traced is cfg with a tracer that sees every statement sent.
func Traced(cfg Config, tr pgx.QueryTracer) *Config {
	cfg.tracer = tr
	return &cfg
}

// HeldEvents is how many events the tailer holds above its cursor.
func HeldEvents(s *Store) int {
	s.tail.mu.Lock()
	defer s.tail.mu.Unlock()
	return len(s.tail.known)
}

// RunGroup runs fns as one group (one transaction) and returns each call's answer.
func RunGroup(s *Store, fns ...func(storage.Tx) error) []error {
	group := make([]*request, len(fns))
	for i, fn := range fns {
		group[i] = &request{ctx: context.Background(), fn: fn, done: make(chan error, 1)}
	}
	s.runGroup(group)
	errs := make([]error, len(fns))
	for i, r := range group {
		errs[i] = <-r.done
	}
	return errs
}
