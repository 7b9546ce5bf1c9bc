package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/storage"
)

// publishRequest is the body of POST /v1/channels/{channel}/events.
type publishRequest struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// published is the answer to a publish.
type published struct {
	ID      string    `json:"id"`
	Channel string    `json:"channel"`
	Time    time.Time `json:"time"`
}

func handlePublish(acc *access, chans *channel.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[publishRequest](r, false)
		if err != nil {
			return err
		}
		e, err := chans.Publish(r.Context(), principal(r), r.PathValue("channel"), req.Type, req.Data)
		if err != nil {
			return err
		}
		encode(w, http.StatusAccepted, published{ID: e.Cursor(), Channel: e.Stream, Time: e.Time})
		return nil
	})
}

// handleChannelEvents streams a channel (SSE) or pages its history (JSON).
func handleChannelEvents(acc *access, chans *channel.Service, store storage.Reader, hub *event.Hub, streams context.Context, c *Config) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		name, p := r.PathValue("channel"), principal(r)
		start, err := channelStart(r, chans, p, name)
		if err != nil {
			return err
		}
		if wantsSSE(r) {
			f := c.follow(store, hub, p.Tenant, name, max(start, 0))
			f.Live = start == startLive
			serveSSE(w, r, acc, f, streams)
			return nil
		}
		after := start
		if start == startLive {
			after = channel.FromOldest // a page without a cursor starts at the oldest event kept
		}
		limit, err := pageLimit(r)
		if err != nil {
			return err
		}
		events, err := chans.History(r.Context(), p, name, after, limit)
		if err != nil {
			return err
		}
		writeEvents(w, events, limit, chans.PageBytes())
		return nil
	})
}

// startLive is channelStart's answer for a subscriber that gave no cursor:
// what commits from now on (as Mercure and Centrifugo start, and as
// EventSource expects: it sends Last-Event-ID when it reconnects).
const startLive = -2

// channelStart is where a channel reader starts: after Last-Event-ID or
// ?after= (0: everything retained), before the last ?last=N events, or live.
func channelStart(r *http.Request, chans *channel.Service, p errand.Principal, name string) (int64, error) {
	if _, err := chans.Subscribable(p, name); err != nil {
		return 0, err
	}
	q := r.URL.Query()
	if last := q.Get("last"); last != "" && r.Header.Get("Last-Event-ID") == "" {
		if q.Has("after") {
			return 0, errand.Errorf(errand.EINVALID, "give after or last, not both")
		}
		n, err := strconv.Atoi(last)
		if err != nil {
			return 0, errand.Errorf(errand.EINVALID, "last must be a number of events, 1 to 1000")
		}
		return chans.Tail(r.Context(), p, name, n)
	}
	if r.Header.Get("Last-Event-ID") == "" && !q.Has("after") {
		return startLive, nil
	}
	return resumeCursor(r)
}

// pageLimit reads ?limit= for event pages. Defaults to 100.
func pageLimit(r *http.Request) (int, error) {
	n, err := intParam(r.URL.Query().Get("limit"))
	if n == 0 {
		n = 100
	}
	return n, err
}

// writeEvents answers with a page of events and the cursor of the next page:
// there is one when the page is cut by limit or by maxBytes, the byte budget
// the service read it with.
func writeEvents(w http.ResponseWriter, events []*errand.Event, limit int, maxBytes int64) {
	out := eventList{Events: events}
	if out.Events == nil {
		out.Events = []*errand.Event{}
	}
	var bytes int64
	for _, e := range events {
		bytes += e.Bytes()
	}
	if len(events) > 0 && errand.PageCut(len(events), limit, bytes, maxBytes) {
		next := events[len(events)-1].Cursor()
		out.NextCursor = &next
	}
	encode(w, http.StatusOK, out)
}

// channelView is a declared channel as clients see it.
type channelView struct {
	Pattern        string          `json:"pattern"`
	Description    string          `json:"description,omitempty"`
	HistorySeconds int             `json:"history_seconds"`
	Schema         json.RawMessage `json:"schema,omitempty"`
}

func handleListChannels(chans *channel.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := []channelView{}
		for _, c := range chans.Visible(principal(r)) {
			out = append(out, channelView{Pattern: c.Pattern, Description: c.Description,
				HistorySeconds: int(c.History.Seconds()), Schema: c.Schema})
		}
		encode(w, http.StatusOK, map[string]any{"channels": out})
	})
}
