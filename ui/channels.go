package ui

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/event"
)

// channelPage is the size of a page of a channel's history.
const channelPage = 50

// channelsPage is the data of /ui/channels.
type channelsPage struct {
	Channels []errand.Channel
}

func (d *Dashboard) handleChannels(w http.ResponseWriter, r *http.Request, wh *who) error {
	if name := strings.TrimSpace(r.URL.Query().Get("name")); name != "" {
		http.Redirect(w, r, "/ui/channels/"+url.PathEscape(name), http.StatusSeeOther)
		return nil
	}
	d.render(w, r, http.StatusOK, "channels", "Channels", channelsPage{Channels: d.d.Channels.Visible(wh.p)})
	return nil
}

// channelData is the data of /ui/channels/{name}: a page of its history
// (page 0 is the newest), the live tail after it, the publish form.
type channelData struct {
	Name       string
	Events     []*errand.Event // newest first
	Page       int
	Older      bool
	After      string // where the live tail starts
	CanPublish bool
	Type, Data string // the publish form's last values
}

func (d *Dashboard) handleChannel(w http.ResponseWriter, r *http.Request, wh *who) error {
	name := r.PathValue("name")
	pageNo, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pageNo = max(pageNo, 0)
	if pageNo > 19 {
		return errand.Errorf(errand.EINVALID, "page: the dashboard pages through the last %d events", 20*channelPage)
	}
	from, err := d.d.Channels.Tail(r.Context(), wh.p, name, channelPage*(pageNo+1))
	if err != nil {
		return err
	}
	events, err := d.d.Channels.History(r.Context(), wh.p, name, from, channelPage+1)
	if err != nil {
		return err
	}
	cd := channelData{Name: name, Page: pageNo, CanPublish: wh.p.Can(errand.PermChanPublish, name), Type: "note", Data: `{"hello":"world"}`}
	older, _ := d.d.Channels.Tail(r.Context(), wh.p, name, channelPage*(pageNo+2))
	cd.Older = older < from
	events = events[:min(len(events), channelPage)]
	for i := len(events) - 1; i >= 0; i-- {
		cd.Events = append(cd.Events, events[i])
	}
	after := from
	if n := len(events); n > 0 {
		after = events[n-1].Seq
	}
	cd.After = errand.FormatCursor(after)
	d.render(w, r, http.StatusOK, "channel", name, cd)
	return nil
}

// handleChannelLive streams a channel's events after ?after= (or
// Last-Event-ID) as rows of the tail.
func (d *Dashboard) handleChannelLive(w http.ResponseWriter, r *http.Request, wh *who) error {
	name := r.PathValue("name")
	if _, err := d.d.Channels.Subscribable(wh.p, name); err != nil {
		return err
	}
	seq, err := errand.ResumeCursor(r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after"))
	if err != nil {
		return err
	}
	sub := d.d.Hub.Subscribe(name, liveBuffer, liveBytes)
	past, err := d.d.Channels.History(r.Context(), wh.p, name, seq, 1000)
	if err != nil {
		sub.Close()
		return err
	}
	return d.serveLive(w, r, wh, sub, func(ctx context.Context, s *stream) { d.followChannel(ctx, s, sub, wh, past, seq) })
}

// followChannel sends past, then the events of sub after seq.
func (d *Dashboard) followChannel(ctx context.Context, s *stream, sub *event.Subscription, wh *who, past []*errand.Event, seq int64) {
	send := func(e *errand.Event) bool {
		html, err := d.fragment("message", e)
		if err != nil {
			return true
		}
		return s.send("message", errand.FormatCursor(e.Seq), struct {
			HTML template.HTML `json:"html"`
		}{html}) != nil
	}
	d.follow(ctx, s, sub, wh, past, seq, send)
}

// handlePublish publishes the form's event (the service checks
// channels:publish and the channel's schema).
func (d *Dashboard) handlePublish(w http.ResponseWriter, r *http.Request, wh *who) error {
	name := r.PathValue("name")
	typ, data := strings.TrimSpace(r.PostFormValue("type")), strings.TrimSpace(r.PostFormValue("data"))
	if data == "" {
		data = "null"
	}
	if !json.Valid([]byte(data)) {
		return errand.Errorf(errand.EINVALID, "data is not JSON")
	}
	e, err := d.d.Channels.Publish(r.Context(), wh.p, name, typ, json.RawMessage(data))
	if err != nil {
		return err
	}
	back(w, r, "/ui/channels/"+url.PathEscape(name), "Published event "+errand.FormatCursor(e.Seq)+".")
	return nil
}
