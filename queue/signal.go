package queue

import (
	"sync"

	"github.com/errandhq/errand/storage"
)

// Signal wakes long-polling lease requests the moment queued work commits, with
// no polling loop. It hears commits as a storage.Notifier.
type Signal struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
	// scheduled carries the earliest newly scheduled run_at to the maintainer.
	scheduled chan struct{}
}

var _ storage.Notifier = (*Signal)(nil)

// NewSignal returns a signal with no waiters.
func NewSignal() *Signal {
	return &Signal{waiters: make(map[string]map[chan struct{}]struct{}), scheduled: make(chan struct{}, 1)}
}

// Watch returns a channel that receives when any of operations gains queued jobs,
// and a function that stops watching.
func (s *Signal) Watch(operations []string) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	s.mu.Lock()
	for _, op := range operations {
		w := s.waiters[op]
		if w == nil {
			w = make(map[chan struct{}]struct{})
			s.waiters[op] = w
		}
		w[c] = struct{}{}
	}
	s.mu.Unlock()
	return c, func() {
		s.mu.Lock()
		for _, op := range operations {
			delete(s.waiters[op], c)
			if len(s.waiters[op]) == 0 {
				delete(s.waiters, op)
			}
		}
		s.mu.Unlock()
	}
}

// Committed wakes the watchers of operations that gained queued jobs.
func (s *Signal) Committed(c *storage.Commit) {
	if !c.Scheduled.IsZero() {
		select {
		case s.scheduled <- struct{}{}:
		default:
		}
	}
	if len(c.Ready) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range c.Ready {
		for w := range s.waiters[op] {
			select {
			case w <- struct{}{}:
			default:
			}
		}
	}
}
