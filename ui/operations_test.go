package ui

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/httpapi"
	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/job"
)

// devAccess is httpapi's Access in development mode: everyone is the dev
// principal and nothing is limited or recorded.
type devAccess struct{}

func (devAccess) Authenticate(*http.Request, bool) (errand.Principal, error) {
	return errand.DevPrincipal, nil
}
func (devAccess) Credential(context.Context, *http.Request, string, string) (errand.Principal, error) {
	return errand.DevPrincipal, nil
}
func (devAccess) OpenStream(errand.Principal) (func(), error) { return func() {}, nil }
func (devAccess) Bind(ctx context.Context, _ errand.Principal) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}
func (devAccess) Streams() context.Context                                    { return nil }
func (devAccess) Origins() []string                                           { return nil }
func (devAccess) Denied(*http.Request, errand.Principal, error, int)          {}
func (devAccess) Act(*http.Request, errand.Principal, string, string, string) {}
func (devAccess) Meter() httpapi.Meter                                        { return nil }

var _ httpapi.Access = devAccess{}

// fakeAPI answers GET /v1/operations with ops and records the requests it gets.
type fakeAPI struct {
	ops  string
	mu   sync.Mutex
	seen []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	if r.Method == http.MethodGet && r.URL.Path == "/v1/operations" {
		w.Write([]byte(f.ops))
		return
	}
	if strings.HasSuffix(r.URL.Path, "/pause") || strings.HasSuffix(r.URL.Path, "/resume") {
		w.Write([]byte(`{}`))
		return
	}
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(`{"code":"not_found","detail":"no such route"}`))
}

// dashboard serves a dev-mode dashboard over a SQLite store with two
// operations, its API answered by api.
func dashboard(t *testing.T, api http.Handler) (http.Handler, *http.Cookie, string) {
	t.Helper()
	store := teststore.Open(t)
	hub := event.NewHub()
	ops := []errand.Operation{{Name: "report", Timeout: time.Minute}, {Name: "email", Timeout: time.Minute}}
	jobs, err := job.NewService(store, hub, ops, nil)
	if err != nil {
		t.Fatal(err)
	}
	chans, err := channel.NewService(store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Deps{Jobs: jobs, Channels: chans, Hub: hub, Store: store}, &Config{Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	h := d.Handler(devAccess{}, api)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/ui/operations", nil))
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("no session cookie in dev mode: %v", w.Header())
	}
	csrf := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(w.Body.String())
	if csrf == nil {
		t.Fatal("no CSRF token on the page")
	}
	return h, cookies[0], csrf[1]
}

func get(t *testing.T, h http.Handler, c *http.Cookie, path string) (int, string) {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	r.AddCookie(c)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Body)
	return w.Code, string(b)
}

func post(t *testing.T, h http.Handler, c *http.Cookie, path string, form url.Values) (int, http.Header) {
	t.Helper()
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(c)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Header()
}

// TestPauseResume: the operations page offers pause and resume only once the
// API's operation resource has a paused field, shows the state, and sends
// the button's POST to the API's route; without the CSRF token nothing is sent.
func TestPauseResume(t *testing.T) {
	api := &fakeAPI{ops: `{"operations":[{"name":"report"},{"name":"email"}]}`}
	h, c, csrf := dashboard(t, api)
	if _, body := get(t, h, c, "/ui/operations"); strings.Contains(body, "/pause") || strings.Contains(body, "/resume") {
		t.Errorf("pause or resume offered before the API has them")
	}
	api.ops = `{"operations":[{"name":"report","paused":true},{"name":"email","paused":false}]}`
	_, body := get(t, h, c, "/ui/operations")
	for _, want := range []string{`action="/ui/operations/report/resume"`, `action="/ui/operations/email/pause"`, `s-paused">paused`} {
		if !strings.Contains(body, want) {
			t.Errorf("the operations page lacks %s", want)
		}
	}
	if strings.Contains(body, `action="/ui/operations/report/pause"`) {
		t.Errorf("a paused operation is offered pause")
	}
	if code, _ := post(t, h, c, "/ui/operations/email/pause", url.Values{}); code != http.StatusForbidden {
		t.Errorf("pause without the CSRF token = %d, want 403", code)
	}
	code, hdr := post(t, h, c, "/ui/operations/email/pause", url.Values{"_csrf": {csrf}})
	if code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/ui/operations") {
		t.Errorf("pause = %d (Location %q), want 303 to the operations page", code, hdr.Get("Location"))
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	n := 0
	for _, s := range api.seen {
		if strings.HasPrefix(s, "POST ") {
			n++
			if s != "POST /v1/operations/email/pause" {
				t.Errorf("the API got %s", s)
			}
		}
	}
	if n != 1 {
		t.Errorf("the API got %d POSTs (%v), want the one with the token", n, api.seen)
	}
}

// TestPauseRefused: what the API refuses is shown as its problem.
func TestPauseRefused(t *testing.T) {
	h, c, csrf := dashboard(t, &fakeAPI{ops: `{"operations":[]}`})
	r := httptest.NewRequest("POST", "/ui/operations/report/frobnicate", strings.NewReader(url.Values{"_csrf": {csrf}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(c)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNotFound {
		t.Errorf("an unknown action = %d, want 404", w.Code)
	}
}
