package event

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// page is how many events one history read returns at most (Follow.PageBytes
// bounds their bytes).
const page = 500

// ErrSlow is what a Send function returns when its reader cannot keep up; Follow
// then stops and the transport tells the client to resubscribe (a reset).
var ErrSlow = errors.New("the subscriber fell behind")

// CursorTooOld is returned when a reader asks for events from before its
// stream's floor: retention deleted some of what it would have read.
type CursorTooOld struct {
	Floor int64 // the first cursor that is complete from here on
}

func (e *CursorTooOld) Error() string {
	return fmt.Sprintf("events up to cursor %d are no longer kept", e.Floor)
}

// CursorAhead is returned when a reader asks for events after a cursor the log
// never handed out: it comes from another log, or from this one before it was
// restored from a backup. Reading after it would skip, silently, every event
// until the log reached it again.
type CursorAhead struct {
	Head int64 // the highest cursor the log has handed out
}

func (e *CursorAhead) Error() string {
	return fmt.Sprintf("the cursor is beyond the last event of the log (%d)", e.Head)
}

// Follow is one reader of one stream: the stream's history after a cursor, read
// from the store, then its live events from the hub, handed to send in log order,
// each exactly once. The hub subscription starts before the history is read, so
// nothing committed in between is missed; what both deliver is sent once. A
// reader that falls behind the hub's buffer is caught up from the store again.
type Follow struct {
	Store  storage.Reader
	Hub    *Hub
	Tenant string
	Stream string
	// After is the cursor to start after (0: the beginning). Run advances it.
	After int64
	// Live, when set, starts with what commits from now on and reads no
	// history (After is ignored): a channel subscription without a cursor.
	// From the first event the hub hands over, the reader is an ordinary one
	// (a fall behind is caught up from the store, exactly).
	Live bool
	// Send hands one event to the reader. Returning an error stops Run with it.
	Send func(*Frame) error
	// Flush, when set, is called whenever no further event is waiting (and
	// once the reader follows the live log), so a transport can write several
	// events with one flush (a syscall each).
	Flush func() error
	// Until, when it reports true for a sent event, ends Run (a job's terminal event).
	Until func(*errand.Event) bool
	// Buffer is the live subscription's buffer, in events. Defaults to 256.
	Buffer int
	// BufferBytes bounds the live subscription's buffer in bytes of event data
	// (at least one event). Defaults to errand.DefaultStreamBufferBytes.
	BufferBytes int64
	// PageBytes bounds one history read in bytes of event data (at least one
	// event): a reader that stops reading holds at most one read. Defaults to
	// errand.DefaultReplayBytes.
	PageBytes int64
	// Idle, when set with OnIdle, calls OnIdle after every Idle without an event
	// (a keepalive, with no goroutine of its own).
	Idle   time.Duration
	OnIdle func() error

	replaying bool
	early     *Subscription // taken by Listen, used by Run's first round
}

// Listen subscribes to the hub now, before Run: a live reader (Live) misses
// nothing that commits after Listen returns — a transport calls it before it
// answers the client, so the answer means "subscribed". Run uses the
// subscription; without Run, Close releases it.
func (f *Follow) Listen() {
	if f.early == nil {
		f.early = f.Hub.Subscribe(f.Stream, cmp.Or(f.Buffer, 256), cmp.Or(f.BufferBytes, errand.DefaultStreamBufferBytes))
	}
}

// Close releases a subscription Listen took that Run did not use.
func (f *Follow) Close() {
	if f.early != nil {
		f.early.Close()
		f.early = nil
	}
}

// Replaying reports whether the event being sent comes from the store (the
// history, or a catch-up after falling behind the hub) rather than live from
// the hub: a transport may wait for room to send it, since nothing live
// waits on it.
func (f *Follow) Replaying() bool { return f.replaying }

// Run follows the stream until ctx ends, Send fails or Until is met. It returns,
// before sending anything, *CursorTooOld when After is older than the stream's
// history and *CursorAhead when After is beyond the log's head.
func (f *Follow) Run(ctx context.Context) error {
	if !f.Live {
		if err := f.checkCursor(ctx); err != nil {
			return err
		}
	}
	buffer := cmp.Or(f.Buffer, 256)
	bufferBytes := cmp.Or(f.BufferBytes, errand.DefaultStreamBufferBytes)
	for {
		sub := f.early
		if f.early = nil; sub == nil {
			sub = f.Hub.Subscribe(f.Stream, buffer, bufferBytes)
		}
		var done bool
		var err error
		if !f.Live {
			done, err = f.history(ctx)
		} else {
			err = f.flush() // following from here: a transport may tell its client
		}
		if err == nil && !done {
			done, err = f.live(ctx, sub)
		}
		sub.Close()
		if err != nil || done || ctx.Err() != nil {
			return err
		}
		// The subscription fell behind: catch up from the store and go on.
	}
}

// checkCursor refuses an After the stream cannot resume from: older than what
// retention kept, or beyond the head of the log.
func (f *Follow) checkCursor(ctx context.Context) error {
	var floor, head int64
	var err error
	offStack(func() { floor, err = f.Store.StreamFloor(ctx, f.Tenant, f.Stream) })
	if err != nil {
		return fmt.Errorf("stream floor: %w", err)
	}
	if f.After < floor {
		return &CursorTooOld{Floor: floor}
	}
	if f.After == 0 {
		return nil
	}
	offStack(func() { head, err = f.Store.LogHead(ctx) })
	if err != nil {
		return fmt.Errorf("log head: %w", err)
	}
	if f.After > head {
		return &CursorAhead{Head: head}
	}
	return nil
}

// history sends what the store has after f.After, a read of at most page
// events and PageBytes at a time.
func (f *Follow) history(ctx context.Context) (bool, error) {
	maxBytes := cmp.Or(f.PageBytes, errand.DefaultReplayBytes)
	f.replaying = true
	defer func() { f.replaying = false }()
	for {
		var events []*errand.Event
		var err error
		offStack(func() {
			events, err = f.Store.ListEvents(ctx, storage.ListEventsParams{Tenant: f.Tenant, Stream: f.Stream, After: f.After,
				Limit: page, MaxBytes: maxBytes})
		})
		if err != nil {
			return false, fmt.Errorf("read history: %w", err)
		}
		n, bytes := len(events), int64(0)
		for i, e := range events {
			bytes += e.Bytes()
			events[i] = nil // sent events go while a slow reader blocks on the next
			if done, err := f.send(NewFrame(e)); done || err != nil {
				return done, err
			}
		}
		if err := f.flush(); err != nil {
			return false, err
		}
		if !errand.PageCut(n, page, bytes, maxBytes) {
			return false, nil
		}
	}
}

// live sends the hub's events until the subscription ends.
func (f *Follow) live(ctx context.Context, sub *Subscription) (bool, error) {
	var idle <-chan time.Time
	if f.Idle > 0 && f.OnIdle != nil {
		t := time.NewTicker(f.Idle)
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case <-idle:
			if err := f.OnIdle(); err != nil {
				return false, err
			}
		case d, ok := <-sub.C():
			if !ok {
				return false, nil // cut off for falling behind: the caller catches up
			}
			sub.Received(d)
			if f.Live {
				// The first event committed since the subscription: all before
				// it is history the reader did not ask for.
				f.Live, f.After = false, d.Seq-1
			}
			if d.Tenant != f.Tenant || d.Seq <= f.After {
				continue // another tenant's stream of the same name, or already sent from history
			}
			if done, err := f.send(d); done || err != nil {
				return done, err
			}
			if len(sub.C()) == 0 {
				if err := f.flush(); err != nil {
					return false, err
				}
			}
		case <-ctx.Done():
			return true, nil
		}
	}
}

func (f *Follow) send(d *Frame) (bool, error) {
	if err := f.Send(d); err != nil {
		return false, err
	}
	f.After = d.Seq
	if f.Until != nil && f.Until(d.Event) {
		return true, f.flush()
	}
	return false, nil
}

func (f *Follow) flush() error {
	if f.Flush == nil {
		return nil
	}
	return f.Flush()
}

// offStack runs fn on a goroutine of its own and waits for it. Store reads go
// deep (SQLite is transpiled C with large frames); run on a stream's long-lived
// goroutine they would grow its stack for good, and idle streams are many.
func offStack(fn func()) {
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	<-done
}
