package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/errandhq/errand"
)

// screenshots is where TestUIDemo writes the dashboard's screenshots: a temp
// directory unless set (go test ./cmd/errand -run TestUIDemo -ui.screenshots
// ../../docs/screenshots rewrites the committed set).
var screenshots = flag.String("ui.screenshots", "", "write the dashboard's screenshots to this directory")

// TestUIDemo: errand demo prints the dashboard's URL and the demo works in
// it without sign-in: a report submitted over the API appears live, its page
// follows it to succeeded, its PDF downloads; every page renders at 390 px
// and 1280 px without a horizontal scroll, in light and dark, reachable by
// keyboard, with no console error; each is photographed.
func TestUIDemo(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	dir := t.TempDir()
	cmd := exec.Command(binary, "demo", "--listen", "127.0.0.1:0", "--dir", dir)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	sc := bufio.NewScanner(out)
	var banner strings.Builder
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "API:") {
		banner.WriteString(sc.Text() + "\n")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	m := regexp.MustCompile(`running at (http://\S+)`).FindStringSubmatch(banner.String())
	if m == nil || !strings.Contains(banner.String(), "Dashboard: "+m[1]+"/ui/") {
		t.Fatalf("the demo's banner does not give the dashboard's URL:\n%s", banner.String())
	}
	s := &server{t: t, URL: m[1]}
	u := &uiDriver{t: t, s: s, b: b}

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer hook.Close()
	var ep endpointCreated
	mustJSON(t, u.call("POST", "/v1/webhooks", `{"url":"`+hook.URL+`/hooks","events":["job.succeeded","job.failed"],"description":"the demo's receiver"}`, "", 201), &ep)

	u.open("/ui/jobs")
	u.waitJS(`document.querySelector("[data-live-list]")?.dataset.state === "open"`)
	first := u.submit("", "generate-report", `{"type":"monthly","region":"<b>EMEA</b>"}`)
	u.waitJS(fmt.Sprintf(`!!document.querySelector('tr[data-id=%q]')`, first.ID))
	u.open("/ui/jobs/" + first.ID)
	u.waitJS(`document.getElementById("progress").value > 0 && document.getElementById("status").textContent.includes("running")`)
	u.waitJS(`document.getElementById("status").textContent.includes("succeeded")`)
	if pdf := u.evalAsync(`fetch(document.querySelector(".artifacts a").href).then(r => r.text()).then(t => t.slice(0, 5))`); pdf != "%PDF-" {
		t.Errorf("the report downloads as %q…, want a PDF", pdf)
	}
	for _, kind := range []string{"weekly", "monthly", "weekly"} {
		u.submit("", "generate-report", `{"type":"`+kind+`"}`)
	}
	for i := range 3 {
		u.call("POST", "/v1/channels/reports.monthly/events", fmt.Sprintf(`{"type":"report.ready","data":{"n":%d}}`, i), "", 202)
	}
	running := u.submit("", "generate-report", `{"type":"weekly","region":"Nordics"}`)
	time.Sleep(1500 * time.Millisecond) // the reports run, deliveries go

	dest := *screenshots
	if dest == "" {
		dest = t.TempDir()
	}
	pages := []struct{ name, path string }{
		{"overview", "/ui/"}, {"jobs", "/ui/jobs"}, {"job", "/ui/jobs/" + running.ID}, {"operations", "/ui/operations"},
		{"channels", "/ui/channels"}, {"channel", "/ui/channels/reports.monthly"}, {"webhooks", "/ui/webhooks"},
		{"endpoint", "/ui/webhooks/" + ep.ID}, {"access", "/ui/access"},
	}
	for _, dark := range []bool{false, true} {
		u.colorScheme(dark)
		for _, width := range []int64{390, 1280} {
			for _, p := range pages {
				u.viewport(width)
				u.open(p.path)
				u.waitJS(`document.readyState === "complete"`)
				if w := u.eval(`document.documentElement.scrollWidth`); w != fmt.Sprint(width) {
					wide := u.eval(`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > innerWidth + 1 && !e.closest(".scroll")).map(e => e.tagName + "." + e.className).slice(0, 5).join(" ")`)
					t.Errorf("%s at %d px is %s px wide (a horizontal scroll): %s", p.name, width, w, wide)
				}
				if !dark || p.name == "overview" || p.name == "jobs" {
					name := fmt.Sprintf("%s-%d", p.name, width)
					if dark {
						name += "-dark"
					}
					u.screenshot(filepath.Join(dest, name+".png"))
				}
			}
		}
	}
	u.colorScheme(false)
	light := u.eval(`getComputedStyle(document.documentElement).backgroundColor`)
	u.colorScheme(true)
	if dark := u.eval(`getComputedStyle(document.documentElement).backgroundColor`); dark == light {
		t.Errorf("dark and light schemes share the background %s", light)
	}

	// Keyboard: Tab reaches the skip link, then the navigation.
	u.open("/ui/jobs")
	u.waitJS(`document.readyState === "complete"`)
	for _, want := range []string{"Skip to content", "errand", "Overview", "Jobs"} {
		if _, err := chromedp.Run(b.ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
		if got := u.eval(`document.activeElement.textContent.trim()`); got != want {
			t.Errorf("Tab focused %q, want %q", got, want)
		}
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("the pages logged errors: %q", errs)
	}
	if j := u.job("", first.ID); j.Status != errand.StatusSucceeded {
		t.Errorf("the first report is %s", j.Status)
	}
}

func (u *uiDriver) viewport(width int64) {
	u.t.Helper()
	if err := chromedp.Do(u.b.ctx, chromedp.EmulateViewport(width, 860)); err != nil {
		u.t.Fatal(err)
	}
}

// colorScheme emulates prefers-color-scheme.
func (u *uiDriver) colorScheme(dark bool) {
	u.t.Helper()
	v := "light"
	if dark {
		v = "dark"
	}
	_, err := chromedp.Run(u.b.ctx, func(ctx context.Context, t *chromedp.Target) (cdp.Empty, error) {
		return cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}})
	})
	if err != nil {
		u.t.Fatal(err)
	}
}

func (u *uiDriver) screenshot(path string) {
	u.t.Helper()
	png, err := chromedp.Run(u.b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		u.t.Fatalf("screenshot %s: %v", path, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		u.t.Fatal(err)
	}
}
