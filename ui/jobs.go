package ui

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/job"
)

// Limits of what one request of the jobs page reads.
const (
	// pageSize is the jobs a page shows.
	pageSize = 50
	// searchScan is the most jobs one search request reads (search by
	// idempotency key or metadata has no index: it reads pages newest first).
	searchScan = 5000
	// maxBulk is the most jobs one bulk action acts on.
	maxBulk = 10000
)

// jobFilter is what the jobs page shows: the query of /ui/jobs.
type jobFilter struct {
	Operation string
	Status    string
	Since     string // created at or after (UTC, as <input type=datetime-local> or RFC 3339)
	Until     string // created before
	Q         string // a job id, an idempotency key, metadata key=value or a metadata value
	since     time.Time
	until     time.Time
}

func parseFilter(q url.Values) (jobFilter, error) {
	f := jobFilter{Operation: q.Get("operation"), Status: q.Get("status"), Since: q.Get("since"), Until: q.Get("until"),
		Q: strings.TrimSpace(q.Get("q"))}
	var err error
	if f.since, err = parseWhen(f.Since); err != nil {
		return f, errand.Errorf(errand.EINVALID, "since: %v", err)
	}
	if f.until, err = parseWhen(f.Until); err != nil {
		return f, errand.Errorf(errand.EINVALID, "until: %v", err)
	}
	if f.Status != "" && !errand.Status(f.Status).Valid() {
		return f, errand.Errorf(errand.EINVALID, "status %q is not a job status", f.Status)
	}
	return f, nil
}

// parseWhen reads a time as the filter form sends it (UTC).
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a time like 2026-12-01T15:04 (UTC)")
}

// query is the filter as a URL query (without a cursor).
func (f jobFilter) query() string {
	v := url.Values{}
	for k, s := range map[string]string{"operation": f.Operation, "status": f.Status, "since": f.Since, "until": f.Until, "q": f.Q} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v.Encode()
}

// searching reports whether the filter needs a scan (a text search).
func (f jobFilter) searching() bool { return f.Q != "" }

// matches reports whether j passes the filter's parts that the store does not
// select (times and the search), and whether the jobs after j (older) might.
func (f jobFilter) matches(j *errand.Job) (ok, more bool) {
	if !f.since.IsZero() && j.CreatedAt.Before(f.since) {
		return false, false
	}
	if !f.until.IsZero() && !j.CreatedAt.Before(f.until) {
		return false, true
	}
	if f.Operation != "" && j.Operation != f.Operation {
		return false, true
	}
	if f.Status != "" && string(j.Status) != f.Status {
		return false, true
	}
	return f.Q == "" || searchMatch(f.Q, j), true
}

// searchMatch: the id, the idempotency key, a metadata key=value or value.
func searchMatch(q string, j *errand.Job) bool {
	if j.ID == q || (j.IdempotencyKey != "" && j.IdempotencyKey == q) {
		return true
	}
	k, v, pair := strings.Cut(q, "=")
	for mk, mv := range j.Metadata {
		if (pair && mk == k && mv == v) || (!pair && mv == q) {
			return true
		}
	}
	return false
}

// jobsPage is the data of /ui/jobs.
type jobsPage struct {
	Filter     jobFilter
	Query      string
	Operations []string
	Statuses   []errand.Status
	Jobs       []*errand.Job
	Next       string // the cursor of the next page; "" on the last
	Scanned    int    // jobs read by a search
	Live       bool   // the first page follows new jobs
}

var statuses = []errand.Status{errand.StatusScheduled, errand.StatusQueued, errand.StatusRunning,
	errand.StatusSucceeded, errand.StatusFailed, errand.StatusCanceled}

func (d *Dashboard) handleJobs(w http.ResponseWriter, r *http.Request, wh *who) error {
	q := r.URL.Query()
	f, err := parseFilter(q)
	if err != nil {
		return err
	}
	if errand.ValidID("job", f.Q) { // a job's id: its page
		if _, err := d.d.Jobs.Get(r.Context(), wh.p, f.Q); err == nil {
			http.Redirect(w, r, "/ui/jobs/"+url.PathEscape(f.Q), http.StatusSeeOther)
			return nil
		}
	}
	limit := searchScan
	if !f.searching() {
		limit = pageSize
	}
	jobs, next, scanned, err := d.selectJobs(r, wh, f, q.Get("cursor"), pageSize, limit)
	if err != nil {
		return err
	}
	pg := jobsPage{Filter: f, Query: f.query(), Statuses: statuses, Jobs: jobs, Next: next, Scanned: scanned,
		Live: q.Get("cursor") == ""}
	for _, op := range d.d.Jobs.Visible(wh.p) {
		pg.Operations = append(pg.Operations, op.Name)
	}
	d.render(w, r, http.StatusOK, "jobs", "Jobs", pg)
	return nil
}

// selectJobs reads up to want jobs that f matches, newest first, from cursor
// on, reading at most scan jobs; it returns them, the cursor after the last
// one read ("" when no more can match) and how many it read. Paging is by
// keyset (ids are time-ordered): the store reads only the page, never counts.
func (d *Dashboard) selectJobs(r *http.Request, wh *who, f jobFilter, cursor string, want, scan int) ([]*errand.Job, string, int, error) {
	if cursor == "" && !f.until.IsZero() {
		cursor = errand.PageCursor(errand.FloorID("job", f.until))
	}
	var out []*errand.Job
	read := 0
	for {
		page := min(max(want-len(out), 1)+1, 1000)
		if f.searching() {
			page = 1000
		}
		list, next, err := d.d.Jobs.List(r.Context(), wh.p, job.ListParams{Operation: f.Operation,
			Status: errand.Status(f.Status), Cursor: cursor, Limit: min(page, scan-read)})
		if err != nil {
			return nil, "", read, err
		}
		for i, j := range list {
			read++
			ok, more := f.matches(j)
			if !more {
				return out, "", read, nil
			}
			if ok {
				out = append(out, j)
			}
			if len(out) == want {
				if i == len(list)-1 && next == "" {
					return out, "", read, nil
				}
				return out, errand.PageCursor(j.ID), read, nil
			}
		}
		if next == "" {
			return out, "", read, nil
		}
		cursor = next
		if read >= scan {
			return out, cursor, read, nil
		}
	}
}

// jobPage is the data of /ui/jobs/{id}.
type jobPage struct {
	Job    *errand.Job
	Events []*errand.Event
	After  string // the cursor of the last event shown
	Live   bool
}

func (d *Dashboard) handleJob(w http.ResponseWriter, r *http.Request, wh *who) error {
	j, err := d.d.Jobs.Get(r.Context(), wh.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	events, err := d.d.Jobs.Events(r.Context(), wh.p, j.ID, "", 1000)
	if err != nil {
		return err
	}
	pg := jobPage{Job: j, Events: events, After: "0", Live: !j.Status.Terminal()}
	if n := len(events); n > 0 {
		pg.After = errand.FormatCursor(events[n-1].Seq)
	}
	d.render(w, r, http.StatusOK, "job", j.ID, pg)
	return nil
}

// handleJobAction cancels, retries or deletes a job, as the REST routes do
// (the service checks the permission; the act is audited).
func (d *Dashboard) handleJobAction(w http.ResponseWriter, r *http.Request, wh *who) error {
	id, action := r.PathValue("id"), r.PathValue("action")
	var j *errand.Job
	var err error
	var perm string
	switch action {
	case "cancel":
		perm = errand.PermJobsCancel
		j, err = d.d.Jobs.Cancel(r.Context(), wh.p, id)
	case "retry":
		perm = errand.PermJobsRetry
		j, err = d.d.Jobs.Retry(r.Context(), wh.p, id)
	case "delete":
		perm = errand.PermJobsDelete
		err = d.d.Jobs.Delete(r.Context(), wh.p, id)
	default:
		return errand.Errorf(errand.ENOTFOUND, "no action %q on jobs", action)
	}
	if err != nil {
		return err
	}
	if j == nil {
		d.access.Act(r, wh.p, perm, id, "via=ui")
		back(w, r, "/ui/jobs", "Deleted "+id+".")
		return nil
	}
	d.access.Act(r, wh.p, perm, j.ID, "operation="+j.Operation+" via=ui")
	back(w, r, "/ui/jobs/"+url.PathEscape(j.ID), action+": done.")
	return nil
}

// handleArtifact downloads an artifact of a job.
func (d *Dashboard) handleArtifact(w http.ResponseWriter, r *http.Request, wh *who) error {
	a, f, err := d.d.Jobs.Artifact(r.Context(), wh.p, r.PathValue("id"), r.PathValue("name"))
	if err != nil {
		return err
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", a.ContentType)
	h.Set("Content-Length", strconv.FormatInt(a.Size, 10))
	h.Set("Content-Disposition", `attachment; filename="`+a.Name+`"`)
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	_, err = io.Copy(w, f)
	return err
}

// bulkPage is the confirmation of a bulk action.
type bulkPage struct {
	Action string
	Count  int
	Capped bool
	Token  string
	Query  string
}

// handleBulk counts the jobs the filter matches that the action applies to
// and asks for a confirmation; the selection is kept with the session, so
// what is confirmed is exactly what was counted.
func (d *Dashboard) handleBulk(w http.ResponseWriter, r *http.Request, wh *who) error {
	if err := r.ParseForm(); err != nil {
		return errand.Errorf(errand.EINVALID, "the form does not parse: %v", err)
	}
	action := r.PostForm.Get("action")
	if action != "retry" && action != "cancel" && action != "delete" {
		return errand.Errorf(errand.EINVALID, "bulk action %q is not retry, cancel or delete", action)
	}
	f, err := parseFilter(r.PostForm)
	if err != nil {
		return err
	}
	jobs, next, _, err := d.selectJobs(r, wh, f, "", maxBulk, maxBulk*4)
	if err != nil {
		return err
	}
	sel := &selection{action: action, filter: f.query(), expires: time.Now().Add(10 * time.Minute)}
	for _, j := range jobs {
		if applies(action, j) {
			sel.ids = append(sel.ids, j.ID)
		}
	}
	d.render(w, r, http.StatusOK, "bulk", "Confirm", bulkPage{Action: action, Count: len(sel.ids), Capped: next != "",
		Token: wh.s.hold(sel), Query: sel.filter})
	return nil
}

// applies reports whether action can change j.
func applies(action string, j *errand.Job) bool {
	switch action {
	case "retry":
		return j.Status == errand.StatusFailed || j.Status == errand.StatusCanceled
	case "cancel":
		return !j.Status.Terminal()
	}
	return j.Status.Terminal()
}

// handleBulkConfirm does a confirmed bulk action, job by job (each checked
// and audited as one action of the REST API), and says how it went.
func (d *Dashboard) handleBulkConfirm(w http.ResponseWriter, r *http.Request, wh *who) error {
	sel := wh.s.take(r.PostFormValue("token"))
	if sel == nil {
		return errand.Errorf(errand.EINVALID, "this confirmation expired or was used: count the jobs again")
	}
	done, failed := 0, 0
	var first error
	for _, id := range sel.ids {
		var err error
		switch sel.action {
		case "retry":
			_, err = d.d.Jobs.Retry(r.Context(), wh.p, id)
		case "cancel":
			_, err = d.d.Jobs.Cancel(r.Context(), wh.p, id)
		case "delete":
			err = d.d.Jobs.Delete(r.Context(), wh.p, id)
		}
		if err != nil {
			failed++
			first = cmpErr(first, err)
			continue
		}
		done++
	}
	d.access.Act(r, wh.p, "jobs:"+sel.action, "jobs", "bulk via=ui count="+strconv.Itoa(done)+" query="+sel.filter)
	msg := sel.action + ": " + strconv.Itoa(done) + " jobs."
	if failed > 0 {
		msg += " " + strconv.Itoa(failed) + " refused (" + errand.ErrorMessage(first) + ")."
	}
	to := "/ui/jobs"
	if sel.filter != "" {
		to += "?" + sel.filter
	}
	back(w, r, to, msg)
	return nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
