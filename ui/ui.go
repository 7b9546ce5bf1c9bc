package ui

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/audit"
	"github.com/errandhq/errand/auth"
	"github.com/errandhq/errand/bridge"
	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/httpapi"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/telemetry"
	"github.com/errandhq/errand/webhook"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Deps are what the dashboard shows and acts on: errand's services, called
// in process with the signed-in principal, so each checks its permissions as
// it does for the REST API.
type Deps struct {
	Log      *slog.Logger
	Jobs     *job.Service
	Channels *channel.Service
	Hub      *event.Hub
	// Store reads the queue's gauges (TenantQueueStats).
	Store storage.Reader
	// Webhooks, Auth, Audit, Usage and Bridges are optional: a nil one's page
	// says it is off.
	Webhooks *webhook.Service
	Auth     *auth.Authenticator
	Audit    *audit.Log
	Usage    *telemetry.Usage
	Bridges  *bridge.Bridges
}

// Config tunes the dashboard. The zero value is ready to use.
type Config struct {
	// Dev serves without sign-in: every browser is the dev principal (errand
	// demo, serve --dev). Defaults to false.
	Dev bool
	// SessionTTL is how long a sign-in lasts (at most as long as the token
	// it was made with). Defaults to 12 hours.
	SessionTTL time.Duration
	// Ping is how often a live page's stream sends a comment to keep its
	// connection open. Defaults to 15 seconds.
	Ping time.Duration
	// QueueInterval is how long the queue's gauges (depth, oldest job) the
	// overview and operations pages show may be old. Defaults to 2 seconds.
	QueueInterval time.Duration
	// Version is shown in the footer.
	Version string
}

// Dashboard is errand's web dashboard, served at /ui/ (httpapi.UI).
type Dashboard struct {
	d        Deps
	c        Config
	sessions *sessions
	pages    map[string]*template.Template
	access   httpapi.Access
	api      http.Handler
	// queueStats caches the overview's queue gauges per tenant for
	// Config.QueueInterval.
	queueStats *queueCache
}

var _ httpapi.UI = (*Dashboard)(nil)

// New returns the dashboard.
func New(d Deps, cfg *Config) (*Dashboard, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.SessionTTL = cmp.Or(c.SessionTTL, 12*time.Hour)
	c.Ping = cmp.Or(c.Ping, 15*time.Second)
	c.QueueInterval = cmp.Or(c.QueueInterval, 2*time.Second)
	if c.SessionTTL < 0 || c.Ping < 0 || c.QueueInterval < 0 {
		return nil, errors.New("ui config: session TTL and ping must be positive")
	}
	if d.Jobs == nil || d.Hub == nil || d.Store == nil || d.Channels == nil {
		return nil, errors.New("ui: jobs, channels, hub and store are required")
	}
	d.Log = cmp.Or(d.Log, slog.Default())
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &Dashboard{d: d, c: c, sessions: newSessions(c.SessionTTL), pages: pages, queueStats: &queueCache{ttl: c.QueueInterval}}, nil
}

// parsePages parses each page's template with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html", n)
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// Handler serves the dashboard; httpapi mounts it at /ui/ and lends it its
// access (authentication, audit, stream limits) and the API (pause and
// resume go through the REST routes).
// Each call serves with its own access and API (httpapi.Routes calls it on a
// route table it throws away); sessions are the Dashboard's, shared.
func (d *Dashboard) Handler(a httpapi.Access, api http.Handler) http.Handler {
	served := *d
	served.access, served.api = a, api
	mux := http.NewServeMux()
	served.routes(mux)
	cop := http.NewCrossOriginProtection()
	return headers(cop.Handler(mux))
}

// csp lets pages use errand's own scripts, styles and streams, and nothing
// else: no inline script or style, no other origin, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/ui/assets/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// signedIn resolves the request's session and authenticates its credential
// again (a revoked key ends it); in development mode a browser without a
// session gets one. Requests that change something must carry the session's
// CSRF token (form field _csrf or header X-CSRF-Token).
func (d *Dashboard) signedIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := d.session(r)
		if s == nil && d.c.Dev {
			s = d.sessions.create("", nil)
			setCookie(w, r, s)
		}
		if s == nil {
			d.signInAgain(w, r, "Sign in to continue.")
			return
		}
		p, err := d.access.Credential(r.Context(), r, s.token, "")
		if err != nil {
			d.sessions.end(s.id)
			clearCookie(w, r)
			d.signInAgain(w, r, "Your session ended: "+errand.ErrorMessage(err))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			tok := r.Header.Get("X-CSRF-Token")
			if tok == "" {
				tok = r.PostFormValue("_csrf")
			}
			if !s.validCSRF(tok) {
				d.fail(w, r, errand.Errorf(errand.EFORBIDDEN, "the form's CSRF token is missing or wrong: reload the page and try again"))
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(withWho(r.Context(), &who{s: s, p: p})))
	})
}

// session is the request's session, or nil.
func (d *Dashboard) session(r *http.Request) *session {
	c, err := r.Cookie(cookieName(r))
	if err != nil {
		return nil
	}
	return d.sessions.get(c.Value)
}

// signInAgain sends a page to sign-in, and anything else a 401.
func (d *Dashboard) signInAgain(w http.ResponseWriter, r *http.Request, why string) {
	if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/live") {
		http.Redirect(w, r, "/ui/sign-in?next="+urlQuery(r.URL.RequestURI())+"&why="+urlQuery(why), http.StatusSeeOther)
		return
	}
	d.renderError(w, r, http.StatusUnauthorized, why)
}

// base is what every page's layout shows.
type base struct {
	Title   string
	Nav     string
	P       *errand.Principal
	CSRF    string
	Dev     bool
	Version string
	Flash   string
	Now     time.Time
}

// page is the data of a page: the layout's and the page's own.
type page struct {
	base
	Data any
}

// render writes the named page with status.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	t := d.pages[name]
	if t == nil {
		panic("ui: no page " + name)
	}
	pg := page{base: base{Title: title, Nav: name, Dev: d.c.Dev, Version: d.c.Version, Now: time.Now().UTC(),
		Flash: r.URL.Query().Get("flash")}, Data: data}
	if wh := whoOf(r); wh != nil {
		pg.P, pg.CSRF = &wh.p, wh.s.csrf
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", pg); err != nil {
		d.d.Log.Error("ui: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail answers err as an error page, and records a refusal in the audit log
// as the API does.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	prob := httpapi.Problem(err)
	if wh := whoOf(r); wh != nil && d.access != nil {
		d.access.Denied(r, wh.p, err, prob.Status)
	}
	if prob.Code == errand.EINTERNAL {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			return
		}
		d.d.Log.ErrorContext(r.Context(), "ui: internal error", "err", err, "request_id", httpapi.RequestID(r.Context()), "path", r.URL.Path)
	}
	d.renderError(w, r, prob.Status, prob.Title+": "+prob.Detail)
}

func (d *Dashboard) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d.render(w, r, status, "error", http.StatusText(status), msg)
}

// handler adapts fn: an error it returns becomes an error page.
func (d *Dashboard) handler(fn func(w http.ResponseWriter, r *http.Request, wh *who) error) http.Handler {
	return d.signedIn(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r, whoOf(r)); err != nil {
			d.fail(w, r, err)
		}
	}))
}

// back redirects to to after a form did its work, with a message.
func back(w http.ResponseWriter, r *http.Request, to, flash string) {
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	if flash != "" {
		to += sep + "flash=" + urlQuery(flash)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// forward sends a request to the REST API as the signed-in principal and
// returns its status and body: what the dashboard does that way is
// authenticated, checked and audited exactly as an API call.
func (d *Dashboard) forward(r *http.Request, wh *who, method, path string, body io.Reader) (int, []byte) {
	req, err := http.NewRequestWithContext(r.Context(), method, path, body)
	if err != nil {
		return http.StatusBadRequest, []byte(`{"detail":"bad path"}`)
	}
	req.RemoteAddr = r.RemoteAddr
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", httpapi.RequestID(r.Context()))
	if wh.s.token != "" {
		req.Header.Set("Authorization", "Bearer "+wh.s.token)
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	d.api.ServeHTTP(rec, req)
	return rec.status, rec.body.Bytes()
}

// recorder keeps an in-process answer of the API.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (c *recorder) Header() http.Header { return c.header }
func (c *recorder) Write(b []byte) (int, error) {
	c.wrote = true
	return c.body.Write(b)
}
func (c *recorder) WriteHeader(s int) {
	if !c.wrote {
		c.status, c.wrote = s, true
	}
}
