package postgres

// HeldEvents is how many events the tailer holds above its cursor.
func HeldEvents(s *Store) int {
	s.tail.mu.Lock()
	defer s.tail.mu.Unlock()
	return len(s.tail.known)
}
