package telemetry

import (
	"sync/atomic"

	"github.com/errandhq/errand/storage"
)

// Observers is a storage.Observer that passes each commit to every Observer
// added, in the order added. A driver takes its Observer when it opens, before
// the parts that observe it exist: they are added once made (Add is safe
// beside commits).
type Observers struct {
	list atomic.Pointer[[]storage.Observer]
}

var _ storage.Observer = (*Observers)(nil)

// Add appends o (nil is ignored).
func (os *Observers) Add(o storage.Observer) {
	if o == nil {
		return
	}
	for {
		old := os.list.Load()
		var next []storage.Observer
		if old != nil {
			next = append(next, *old...)
		}
		next = append(next, o)
		if os.list.CompareAndSwap(old, &next) {
			return
		}
	}
}

// Committed tells every Observer of c.
func (os *Observers) Committed(c *storage.CommitStats) {
	if l := os.list.Load(); l != nil {
		for _, o := range *l {
			o.Committed(c)
		}
	}
}

// Failed tells every Observer of err.
func (os *Observers) Failed(err error) {
	if l := os.list.Load(); l != nil {
		for _, o := range *l {
			o.Failed(err)
		}
	}
}
