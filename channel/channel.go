// Package channel is publish/subscribe: channels declared in config by name or
// pattern, events published to them kept for their history and replayed or
// followed live through the same event log as jobs.
package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/schema"
	"github.com/errandhq/errand/storage"
)

// Limits on what a publish may send.
const (
	MaxNameLen = 200
	MaxTypeLen = 100
)

var (
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	patternRe = regexp.MustCompile(`^([A-Za-z0-9_-]+|\*)(\.([A-Za-z0-9_-]+|\*))*(\.>)?$|^>$`)
	typeRe    = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
)

// ValidName reports whether name can name a channel: dot-separated segments of
// letters, digits, '_' and '-', at most 200 bytes, not starting with "job_".
func ValidName(name string) bool {
	return len(name) <= MaxNameLen && nameRe.MatchString(name) && !strings.HasPrefix(name, "job_")
}

// ValidPattern reports whether p is a channel name or pattern.
func ValidPattern(p string) bool { return len(p) <= MaxNameLen && patternRe.MatchString(p) }

// MatchPattern reports whether the channel name matches a channel pattern.
// Channel patterns are the segment dialect of channel names, written as NATS
// subjects are: names are '.'-separated segments, '*' matches exactly one
// whole segment and a final '>' one or more ("orders.*" matches "orders.eu",
// not "orders.eu.paid"; "orders.>" matches both). They are not permission
// globs (errand.MatchGlob), where '*' matches any run of characters, dots
// included: the grant channels:subscribe:orders.* covers "orders.eu.paid".
func MatchPattern(pattern, name string) bool {
	ps, ns := strings.Split(pattern, "."), strings.Split(name, ".")
	for i, p := range ps {
		if p == ">" {
			return len(ns) > i
		}
		if i >= len(ns) || (p != "*" && p != ns[i]) {
			return false
		}
	}
	return len(ps) == len(ns)
}

// Config tunes the service. The zero value is ready to use.
type Config struct {
	// Now is the clock. Defaults to errand.Now.
	Now func() time.Time
	// PageBytes bounds the event data of one History page, in bytes (at least
	// one event). Defaults to errand.DefaultPageBytes.
	PageBytes int64
	// TraceParent is the W3C trace context of a publish's context (its
	// request's span), which the event's webhook deliveries continue. Nil
	// keeps none.
	TraceParent func(ctx context.Context) string
}

// Service publishes to channels.
type Service struct {
	store     storage.Store
	channels  []entry
	now       func() time.Time
	pageBytes int64
	trace     func(ctx context.Context) string
}

type entry struct {
	ch     errand.Channel
	schema *schema.Schema
}

// NewService returns the service for the declared channels; the first pattern
// (in declaration order) that matches a name decides its settings.
func NewService(store storage.Store, chans []errand.Channel, cfg *Config) (*Service, error) {
	s := &Service{store: store, now: errand.Now, pageBytes: errand.DefaultPageBytes}
	if cfg != nil && cfg.Now != nil {
		s.now = cfg.Now
	}
	if cfg != nil && cfg.PageBytes > 0 {
		s.pageBytes = cfg.PageBytes
	}
	if cfg != nil {
		s.trace = cfg.TraceParent
	}
	for _, c := range chans {
		if !ValidPattern(c.Pattern) {
			return nil, fmt.Errorf("channel %q: not a channel name or pattern", c.Pattern)
		}
		if c.History == 0 {
			c.History = errand.DefaultHistory
		}
		e := entry{ch: c}
		if len(c.Schema) > 0 {
			sc, err := schema.Compile("channel "+c.Pattern, c.Schema)
			if err != nil {
				return nil, err
			}
			e.schema = sc
		}
		s.channels = append(s.channels, e)
	}
	return s, nil
}

// Channels returns the declared channels.
func (s *Service) Channels() []errand.Channel {
	out := make([]errand.Channel, len(s.channels))
	for i, e := range s.channels {
		out[i] = e.ch
	}
	return out
}

// Subscribable returns the declared channel a name belongs to, if p may
// subscribe to (or read the history of) that name.
func (s *Service) Subscribable(p errand.Principal, name string) (errand.Channel, error) {
	ch, err := s.Find(name)
	if err == nil && !p.Can(errand.PermChanSubscribe, name) {
		return ch, errand.Deny(errand.PermChanSubscribe, name)
	}
	return ch, err
}

// Visible returns the declared channels p may publish or subscribe to (by
// pattern: a grant on any name the pattern could match counts).
func (s *Service) Visible(p errand.Principal) []errand.Channel {
	var out []errand.Channel
	for _, e := range s.channels {
		for _, perm := range p.Permissions {
			if grantsPattern(perm, e.ch.Pattern) {
				out = append(out, e.ch)
				break
			}
		}
	}
	return out
}

// grantsPattern reports whether perm allows publishing or subscribing to some
// name of a channel pattern ("orders.*", "orders.>").
func grantsPattern(perm, pattern string) bool {
	if perm == errand.PermAdmin {
		return true
	}
	for _, action := range []string{errand.PermChanPublish, errand.PermChanSubscribe} {
		obj, ok := strings.CutPrefix(perm, action)
		if ok && (obj == "" || obj == ":*") {
			return true
		}
		if ok && strings.HasPrefix(obj, ":") {
			glob := obj[1:]
			prefix, _, _ := strings.Cut(strings.NewReplacer(">", "*").Replace(pattern), "*")
			if errand.MatchGlob(glob, pattern) || strings.HasPrefix(glob, prefix) || strings.HasPrefix(prefix, strings.TrimRight(glob, "*")) {
				return true
			}
		}
	}
	return false
}

// Find returns the declared channel a name belongs to.
func (s *Service) Find(name string) (errand.Channel, error) {
	e, err := s.find(name)
	if err != nil {
		return errand.Channel{}, err
	}
	return e.ch, nil
}

func (s *Service) find(name string) (*entry, error) {
	if !ValidName(name) {
		return nil, errand.Errorf(errand.EINVALID, "%q is not a channel name: dot-separated segments of letters, digits, '_' and '-'", errand.Truncate(name, 80))
	}
	for i := range s.channels {
		if MatchPattern(s.channels[i].ch.Pattern, name) {
			return &s.channels[i], nil
		}
	}
	return nil, errand.Errorf(errand.ECHANNELNOTFOUND, "channel %q is not declared", name)
}

// Publish appends an event to a channel of the principal's tenant; it returns
// once the event is committed, with its cursor.
func (s *Service) Publish(ctx context.Context, p errand.Principal, name, typ string, data json.RawMessage) (*errand.Event, error) {
	ev, err := s.prepare(p, name, typ, data)
	if err != nil {
		return nil, err
	}
	s.traced(ctx, ev)
	if err := s.store.WithTx(ctx, func(tx storage.Tx) error { return tx.InsertEvent(ev) }); err != nil {
		return nil, err
	}
	return ev, nil
}

// traced gives ev (nil: none) the trace context of ctx, for its deliveries.
func (s *Service) traced(ctx context.Context, ev *errand.Event) {
	if ev != nil && s.trace != nil {
		ev.TraceParent = s.trace(ctx)
	}
}

// Message is one event for PublishMany.
type Message struct {
	Channel, Type string
	Data          json.RawMessage
	// InTx, when set, runs in the publish's transaction just before the event
	// is appended: what it writes commits with the event. Returning ErrSkip
	// appends nothing for this message (ErrSkip is then its answer); another
	// error fails the whole transaction. It may run more than once (see
	// storage.Store.WithTx).
	InTx func(tx storage.Tx) error
}

// ErrSkip, returned by a Message's InTx, appends nothing for that message.
var ErrSkip = errors.New("channel: message skipped")

// PublishMany appends the messages' events in order in one transaction (one
// commit for all). Each is checked on its own: the answer holds, per
// message, its event or its error; only a failure of the store (or of an
// InTx) fails them all.
func (s *Service) PublishMany(ctx context.Context, p errand.Principal, msgs []Message) ([]*errand.Event, []error, error) {
	evs, errs := make([]*errand.Event, len(msgs)), make([]error, len(msgs))
	for i, m := range msgs {
		evs[i], errs[i] = s.prepare(p, m.Channel, m.Type, m.Data)
		s.traced(ctx, evs[i])
	}
	skipped := make([]bool, len(msgs))
	err := s.store.WithTx(ctx, func(tx storage.Tx) error {
		clear(skipped)
		for i, ev := range evs {
			if ev == nil {
				continue
			}
			if in := msgs[i].InTx; in != nil {
				if err := in(tx); errors.Is(err, ErrSkip) {
					skipped[i] = true
					continue
				} else if err != nil {
					return err
				}
			}
			if err := tx.InsertEvent(ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i := range evs {
		if skipped[i] {
			evs[i], errs[i] = nil, ErrSkip
		}
	}
	return evs, errs, nil
}

// prepare checks one publish and makes its event (not yet stored).
func (s *Service) prepare(p errand.Principal, name, typ string, data json.RawMessage) (*errand.Event, error) {
	e, err := s.find(name)
	if err != nil {
		return nil, err
	}
	if !p.Can(errand.PermChanPublish, name) {
		return nil, errand.Deny(errand.PermChanPublish, name)
	}
	if typ == "" || len(typ) > MaxTypeLen || !typeRe.MatchString(typ) {
		return nil, &errand.Error{Code: errand.EVALIDATION, Message: "the event has invalid fields",
			Fields: []errand.FieldError{{Pointer: "/type", Message: fmt.Sprintf("required: 1 to %d letters, digits, '.', '_', ':' or '-'", MaxTypeLen)}}}
	}
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	if e.schema != nil {
		if err := e.schema.Validate(data); err != nil {
			if ee, ok := err.(*errand.Error); ok {
				ee.Message = "data does not match the channel's schema"
			}
			return nil, err
		}
	}
	now := s.now().UTC()
	exp := now.Add(e.ch.History)
	return &errand.Event{Stream: name, Tenant: p.Tenant, Type: typ, Time: now, Data: data, ExpiresAt: &exp}, nil
}

// ValidType reports whether typ can be an event's type: 1 to 100 letters,
// digits, '.', '_', ':' or '-'.
func ValidType(typ string) bool {
	return typ != "" && len(typ) <= MaxTypeLen && typeRe.MatchString(typ)
}

// PageBytes is the byte budget History pages are read with.
func (s *Service) PageBytes() int64 { return s.pageBytes }

// FromOldest, as History's cursor, starts at the oldest event retention kept.
const FromOldest = -1

// Tail returns the cursor after which the channel's last n events start
// (n from 1 to 1000): a subscriber asking for ?last=n replays from there.
func (s *Service) Tail(ctx context.Context, p errand.Principal, name string, n int) (int64, error) {
	if _, err := s.Subscribable(p, name); err != nil {
		return 0, err
	}
	if n < 1 || n > 1000 {
		return 0, errand.Errorf(errand.EINVALID, "last must be between 1 and 1000")
	}
	after, err := s.store.TailCursor(ctx, p.Tenant, name, n)
	if err != nil {
		return 0, err
	}
	floor, err := s.store.StreamFloor(ctx, p.Tenant, name)
	return max(after, floor), err
}

// History returns a channel's events after a cursor, oldest first: up to limit,
// fewer when their data passes PageBytes (see errand.PageCut). A cursor from
// before what is kept, or beyond any the log handed out, is an invalid_cursor
// error; after FromOldest starts at the oldest event kept.
func (s *Service) History(ctx context.Context, p errand.Principal, name string, after int64, limit int) ([]*errand.Event, error) {
	if _, err := s.Subscribable(p, name); err != nil {
		return nil, err
	}
	if limit < 1 || limit > 1000 {
		return nil, errand.Errorf(errand.EINVALID, "limit must be between 1 and 1000")
	}
	floor, err := s.store.StreamFloor(ctx, p.Tenant, name)
	if err != nil {
		return nil, err
	}
	if after == FromOldest {
		after = floor
	}
	if after < floor {
		return nil, errand.Errorf(errand.ECURSOR, "events up to cursor %d are no longer kept; start after %d", floor, floor)
	}
	if err := storage.CheckHead(ctx, s.store, after); err != nil {
		return nil, err
	}
	return s.store.ListEvents(ctx, storage.ListEventsParams{Tenant: p.Tenant, Stream: name, After: after, Limit: limit,
		MaxBytes: s.pageBytes})
}
