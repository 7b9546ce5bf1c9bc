package postgres

import "github.com/jackc/pgx/v5"

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
