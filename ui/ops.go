package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/telemetry"
)

// opRow is one operation as the overview and the operations page show it.
type opRow struct {
	Op      errand.Operation
	Queued  int64
	Running int64
	Oldest  time.Time // the earliest run_at of a queued job
	// Usage over the last hour (when usage analytics are on and readable).
	Usage *errand.UsageSeries
	// Submitted, Succeeded and Failed are the hour's per-minute bars.
	Submitted, Succeeded, Failed chart
	// Resource is the operation as GET /v1/operations shows it; Paused and
	// CanPause come from it (the field exists once pausing does).
	Pausable bool
	Paused   bool
	CanPause bool
	Schema   string
}

// chart is a bar chart of a series per minute, drawn as one SVG path (a
// page of 200 operations holds 600 of them: one element each, not 60).
type chart struct {
	D     string // the path's d: one bar per minute
	Max   int64
	Total int64
}

// chartOf draws the n minutes from from as bars in a 120×32 box.
func chartOf(points []errand.UsagePoint, from time.Time, n int, value func(*errand.UsageCounts) int64) chart {
	var c chart
	vals := make([]int64, n)
	for i := range points {
		k := int(points[i].Time.Sub(from) / time.Minute)
		if k >= 0 && k < n {
			vals[k] += value(&points[i].UsageCounts)
		}
	}
	for _, v := range vals {
		c.Max = max(c.Max, v)
		c.Total += v
	}
	if c.Max == 0 {
		return c
	}
	var b strings.Builder
	w := 120.0 / float64(n)
	for i, v := range vals {
		if v == 0 {
			continue
		}
		h := max(30*float64(v)/float64(c.Max), 1)
		fmt.Fprintf(&b, "M%.1f 32v-%.1fh%.1fv%.1fz", float64(i)*w, h, w*0.8, h)
	}
	c.D = b.String()
	return c
}

// queueCache keeps each tenant's queue gauges for a moment: the count reads
// every queued job's index entry (half a second at a million queued jobs on
// SQLite), and every open overview asks for it. Past its TTL an entry is
// still served while one refresh runs in the background, so only a tenant's
// first view after a start waits for the count.
type queueCache struct {
	mu    sync.Mutex
	ttl   time.Duration
	byTen map[string]*queueEntry
}

type queueEntry struct {
	at         time.Time
	stats      []storage.QueueStat
	refreshing bool
}

// get returns tenant's gauges, read at most ttl ago, or the last ones while
// a newer read runs.
func (c *queueCache) get(ctx context.Context, s storage.Reader, tenant string) ([]storage.QueueStat, error) {
	c.mu.Lock()
	e := c.byTen[tenant]
	switch {
	case e != nil && time.Since(e.at) < c.ttl:
		c.mu.Unlock()
		return e.stats, nil
	case e != nil:
		if !e.refreshing {
			e.refreshing = true
			go c.refresh(context.WithoutCancel(ctx), s, tenant)
		}
		c.mu.Unlock()
		return e.stats, nil
	}
	c.mu.Unlock()
	stats, err := s.TenantQueueStats(ctx, tenant)
	if err != nil {
		return nil, err
	}
	c.put(tenant, stats)
	return stats, nil
}

func (c *queueCache) refresh(ctx context.Context, s storage.Reader, tenant string) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	stats, err := s.TenantQueueStats(ctx, tenant)
	c.mu.Lock()
	if e := c.byTen[tenant]; e != nil {
		e.refreshing = false
	}
	c.mu.Unlock()
	if err == nil {
		c.put(tenant, stats)
	}
}

func (c *queueCache) put(tenant string, stats []storage.QueueStat) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byTen == nil || len(c.byTen) > 10000 {
		c.byTen = map[string]*queueEntry{}
	}
	c.byTen[tenant] = &queueEntry{at: time.Now(), stats: stats}
}

// overviewPage is the data of /ui/.
type overviewPage struct {
	Ops        []*opRow
	UsageNote  string // why there are no charts, when there are none
	Totals     errand.UsageCounts
	Endpoints  int
	Disabled   []*errand.Endpoint
	Failing    []*errand.Endpoint
	NoWebhooks bool
	From, To   time.Time
}

// operationRows reads the operations the principal may see with their queue
// gauges (the tenant's) and the last hour's usage.
func (d *Dashboard) operationRows(r *http.Request, wh *who) ([]*opRow, string, time.Time, time.Time, error) {
	ops := d.d.Jobs.Visible(wh.p)
	rows := make([]*opRow, 0, len(ops))
	byName := map[string]*opRow{}
	for _, op := range ops {
		row := &opRow{Op: op, Schema: prettyJSON(op.InputSchema)}
		rows = append(rows, row)
		byName[op.Name] = row
	}
	if wh.p.CanAny(errand.PermJobsRead) {
		stats, err := d.queueStats.get(r.Context(), d.d.Store, wh.p.Tenant)
		if err != nil {
			return nil, "", time.Time{}, time.Time{}, err
		}
		for _, st := range stats {
			row := byName[st.Operation]
			if row == nil {
				continue
			}
			switch st.Status {
			case errand.StatusQueued:
				row.Queued, row.Oldest = st.Count, st.Oldest
			case errand.StatusRunning:
				row.Running = st.Count
			}
		}
	}
	to := time.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	from := to.Add(-time.Hour)
	note := ""
	switch {
	case d.d.Usage == nil:
		note = "Usage analytics are off (usage.enabled): no charts."
	case !wh.p.Can(errand.PermUsageRead, ""):
		note = "Charts need usage:read."
	default:
		rep, err := d.d.Usage.Report(r.Context(), wh.p, telemetry.UsageQuery{Step: "minute", From: from, To: to})
		if err != nil {
			return nil, "", from, to, err
		}
		for i := range rep.Operations {
			s := &rep.Operations[i]
			if row := byName[s.Operation]; row != nil {
				row.Usage = s
				row.Submitted = chartOf(s.Points, from, 60, func(c *errand.UsageCounts) int64 { return c.Submitted })
				row.Succeeded = chartOf(s.Points, from, 60, func(c *errand.UsageCounts) int64 { return c.Succeeded })
				row.Failed = chartOf(s.Points, from, 60, func(c *errand.UsageCounts) int64 { return c.Failed })
			}
		}
	}
	return rows, note, from, to, nil
}

func (d *Dashboard) handleOverview(w http.ResponseWriter, r *http.Request, wh *who) error {
	rows, note, from, to, err := d.operationRows(r, wh)
	if err != nil {
		return err
	}
	pg := overviewPage{Ops: rows, UsageNote: note, From: from, To: to, NoWebhooks: d.d.Webhooks == nil}
	for _, row := range rows {
		if u := row.Usage; u != nil {
			pg.Totals.Submitted += u.Total.Submitted
			pg.Totals.Succeeded += u.Total.Succeeded
			pg.Totals.Failed += u.Total.Failed
		}
	}
	if d.d.Webhooks != nil && wh.p.Can(errand.PermWebhooksManage, "") {
		eps, err := d.d.Webhooks.List(r.Context(), wh.p)
		if err != nil {
			return err
		}
		pg.Endpoints = len(eps)
		for _, e := range eps {
			switch {
			case e.Disabled:
				pg.Disabled = append(pg.Disabled, e)
			case e.FailingSince != nil:
				pg.Failing = append(pg.Failing, e)
			}
		}
	}
	sort.SliceStable(pg.Ops, func(i, j int) bool { return pg.Ops[i].Queued > pg.Ops[j].Queued })
	d.render(w, r, http.StatusOK, "overview", "Overview", pg)
	return nil
}

// operationsPage is the data of /ui/operations.
type operationsPage struct {
	Ops       []*opRow
	UsageNote string
}

func (d *Dashboard) handleOperations(w http.ResponseWriter, r *http.Request, wh *who) error {
	rows, note, _, _, err := d.operationRows(r, wh)
	if err != nil {
		return err
	}
	// The API's own view of each operation: its paused field, once pausing
	// exists, decides whether the page offers pause and resume.
	if status, body := d.forward(r, wh, http.MethodGet, "/v1/operations", nil); status == http.StatusOK {
		var list struct {
			Operations []map[string]json.RawMessage `json:"operations"`
		}
		if json.Unmarshal(body, &list) == nil {
			for _, o := range list.Operations {
				var name string
				var paused bool
				_ = json.Unmarshal(o["name"], &name)
				raw, has := o["paused"]
				if !has {
					continue
				}
				_ = json.Unmarshal(raw, &paused)
				for _, row := range rows {
					if row.Op.Name == name {
						row.Pausable, row.Paused = true, paused
						// Pausing acts on every tenant's jobs: operator-level
						// (operations:pause@*), or anyone in development mode.
						row.CanPause = d.c.Dev || wh.p.CanEveryTenant("operations:pause", name)
					}
				}
			}
		}
	}
	d.render(w, r, http.StatusOK, "operations", "Operations", operationsPage{Ops: rows, UsageNote: note})
	return nil
}

// handlePause pauses or resumes an operation through the REST API
// (POST /v1/operations/{name}/pause or /resume), as the signed-in principal.
func (d *Dashboard) handlePause(w http.ResponseWriter, r *http.Request, wh *who) error {
	name, action := r.PathValue("name"), r.PathValue("action")
	if action != "pause" && action != "resume" {
		return errand.Errorf(errand.ENOTFOUND, "no action %q on operations", action)
	}
	status, body := d.forward(r, wh, http.MethodPost, "/v1/operations/"+url.PathEscape(name)+"/"+action, nil)
	if status >= 300 {
		var prob errand.Problem
		_ = json.Unmarshal(body, &prob)
		return &errand.Error{Code: problemCode(prob.Code, status), Message: prob.Detail}
	}
	back(w, r, "/ui/operations", name+": "+action+"d.")
	return nil
}

// problemCode is the code of an API's problem, or one for its status.
func problemCode(code string, status int) string {
	if code != "" {
		return code
	}
	switch status {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return errand.ENOTFOUND
	case http.StatusForbidden:
		return errand.EFORBIDDEN
	}
	return errand.EINTERNAL
}
