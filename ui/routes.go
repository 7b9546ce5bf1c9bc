package ui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/errandhq/errand"
)

// routes registers every page and form of the dashboard.
func (d *Dashboard) routes(mux *http.ServeMux) {
	h := d.handler
	mux.Handle("GET /ui/assets/{name}", handleAsset())
	mux.HandleFunc("GET /ui/sign-in", d.handleSignInPage)
	mux.HandleFunc("POST /ui/sign-in", d.handleSignIn)
	mux.Handle("POST /ui/sign-out", h(d.handleSignOut))

	mux.Handle("GET /ui/{$}", h(d.handleOverview))
	mux.Handle("GET /ui/jobs", h(d.handleJobs))
	mux.Handle("GET /ui/jobs/live", h(d.handleJobsLive))
	mux.Handle("GET /ui/jobs/{id}", h(d.handleJob))
	mux.Handle("GET /ui/jobs/{id}/live", h(d.handleJobLive))
	mux.Handle("GET /ui/jobs/{id}/artifacts/{name}", h(d.handleArtifact))
	mux.Handle("POST /ui/jobs/{id}/{action}", h(d.handleJobAction))
	mux.Handle("POST /ui/jobs/bulk", h(d.handleBulk))
	mux.Handle("POST /ui/jobs/bulk/confirm", h(d.handleBulkConfirm))
	mux.Handle("GET /ui/operations", h(d.handleOperations))
	mux.Handle("POST /ui/operations/{name}/{action}", h(d.handlePause))

	mux.Handle("GET /ui/channels", h(d.handleChannels))
	mux.Handle("GET /ui/channels/{name}", h(d.handleChannel))
	mux.Handle("GET /ui/channels/{name}/live", h(d.handleChannelLive))
	mux.Handle("POST /ui/channels/{name}/publish", h(d.handlePublish))

	mux.Handle("GET /ui/webhooks", h(d.handleWebhooks))
	mux.Handle("POST /ui/webhooks", h(d.handleCreateEndpoint))
	mux.Handle("GET /ui/webhooks/{id}", h(d.handleEndpoint))
	mux.Handle("POST /ui/webhooks/{id}/{action}", h(d.handleEndpointAction))
	mux.Handle("POST /ui/deliveries/{id}/redeliver", h(d.handleRedeliver))
	mux.Handle("POST /ui/callback-secret/rotate", h(d.handleRotateCallback))

	mux.Handle("GET /ui/access", h(d.handleAccess))
	mux.Handle("POST /ui/keys", h(d.handleCreateKey))
	mux.Handle("POST /ui/keys/{id}/revoke", h(d.handleRevokeKey))

	mux.Handle("/ui/", h(func(w http.ResponseWriter, r *http.Request, _ *who) error {
		return errand.Errorf(errand.ENOTFOUND, "no page at %s", r.URL.Path)
	}))
}

// handleAsset serves the embedded style sheet and script, cached for a day.
func handleAsset() http.Handler {
	sub, _ := fs.Sub(assetFS, "assets")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		b, err := fs.ReadFile(sub, name)
		if err != nil || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
		w.Header().Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(b)
	})
}

type signInData struct {
	Next, Why string
}

func (d *Dashboard) handleSignInPage(w http.ResponseWriter, r *http.Request) {
	if d.c.Dev {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	q := r.URL.Query()
	d.render(w, r, http.StatusOK, "sign-in", "Sign in", signInData{Next: safeNext(q.Get("next")), Why: q.Get("why")})
}

// handleSignIn authenticates the token given (an API key or an OAuth access
// token) and starts a session.
func (d *Dashboard) handleSignIn(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	if token == "" {
		d.render(w, r, http.StatusUnauthorized, "sign-in", "Sign in", signInData{Next: next, Why: "Paste an API key (ek_…) or an access token."})
		return
	}
	p, err := d.access.Credential(r.Context(), r, token, "")
	if err != nil {
		d.render(w, r, http.StatusUnauthorized, "sign-in", "Sign in", signInData{Next: next, Why: "That token did not sign in: " + errand.ErrorMessage(err)})
		return
	}
	s := d.sessions.create(token, p.Credential.ExpiresAt)
	setCookie(w, r, s)
	d.access.Act(r, p, "ui:sign-in", p.ID, "")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *Dashboard) handleSignOut(w http.ResponseWriter, r *http.Request, wh *who) error {
	d.sessions.end(wh.s.id)
	clearCookie(w, r)
	if d.c.Dev {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/ui/sign-in?why="+urlQuery("Signed out."), http.StatusSeeOther)
	return nil
}

// safeNext keeps a redirect after sign-in on the dashboard.
func safeNext(s string) string {
	if !strings.HasPrefix(s, "/ui/") || strings.HasPrefix(s, "//") || strings.Contains(s, "\\") {
		return "/ui/"
	}
	return s
}

func urlQuery(s string) string { return url.QueryEscape(s) }

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"json":     prettyJSON,
	"time":     formatTime,
	"ptime":    func(t *time.Time) string { return formatTime(derefTime(t)) },
	"ago":      ago,
	"percent":  percent,
	"query":    func(s string) string { return url.QueryEscape(s) },
	"path":     func(s string) string { return url.PathEscape(s) },
	"join":     strings.Join,
	"add":      func(a, b int) int { return a + b },
	"bytes":    humanBytes,
	"brief":    brief,
	"list":     func(s ...string) []string { return s },
	"concrete": func(pattern string) bool { return !strings.ContainsAny(pattern, "*>") },
	"panelOf": func(pg page) panelData {
		jp, _ := pg.Data.(jobPage)
		return panelData{Job: jp.Job, Attempts: attemptsOf(jp.Events), P: pg.P, CSRF: pg.CSRF}
	},
	"seconds": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return (time.Duration(*f * float64(time.Second))).Round(time.Millisecond).String()
	},
}

// prettyJSON indents a JSON document for a <pre>; html/template escapes it.
func prettyJSON(v any) string {
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	default:
		raw, _ = json.Marshal(x)
	}
	if len(raw) == 0 {
		return ""
	}
	var out any
	if json.Unmarshal(raw, &out) != nil {
		return string(raw)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the template escapes; \u003c would hide what the input holds
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
	return strings.TrimSuffix(b.String(), "\n")
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// ago says how long before now t was, roughly.
func ago(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "in " + (-d).Round(time.Second).String()
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func percent(p *errand.Progress) int {
	if p == nil {
		return 0
	}
	return int(p.Percent)
}

// brief is the start of an event's data, for a timeline.
func brief(raw json.RawMessage) string {
	s := string(raw)
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
