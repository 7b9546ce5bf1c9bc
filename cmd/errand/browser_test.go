package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromium is Debian's Chromium, which test.sh installs. Tests never let a
// tool download a browser of its own.
const chromium = "/usr/bin/chromium"

// browser is one headless Chromium for a test, with what its pages wrote to
// the console as errors and the exceptions they threw.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

// newBrowser starts Chromium for t (closed by its cleanup). Without Chromium
// the test is skipped, except under CI=true, where it fails.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := exec.LookPath(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (test.sh installs Debian's chromium)", chromium)
		}
		t.Skipf("%s is missing (apt-get install chromium)", chromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	console := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	logged := chromedp.Events(ctx, cdplog.EntryAdded) // network and CORS errors land here
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	go func() {
		for ev, err := range console {
			if err != nil {
				return
			}
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
				}
				b.note("console.error: " + strings.Join(parts, " "))
			}
		}
	}()
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			b.note((&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
		}
	}()
	go func() {
		for ev, err := range logged {
			if err != nil {
				return
			}
			if ev.Entry != nil && ev.Entry.Level == cdplog.EntryLevelError {
				b.note("log: " + ev.Entry.Text + " " + ev.Entry.URL)
			}
		}
	}()
	return b
}

func (b *browser) note(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errors = append(b.errors, s)
}

// Errors returns what the pages reported as errors so far.
func (b *browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// open navigates to url.
func (b *browser) open(t *testing.T, url string) {
	t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
}

// waitJS evaluates the expression until it is true, or fails the test after d.
func (b *browser) waitJS(t *testing.T, expr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %s is still not true (last error %v; page errors %q)", d, expr, err, b.Errors())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowserCrossOriginEventSource: a page on one origin follows a channel on
// errand's (another port) with the browser's own EventSource. errand's CORS
// configuration allows the page's origin, so the stream — taken over from
// net/http after its head — must carry the CORS and security headers every
// other answer carries; before, Chromium blocked it.
func TestBrowserCrossOriginEventSource(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	var errandURL string
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>cross-origin</title><script>
window.got = []; window.errs = 0;
const es = new EventSource(%q);
es.addEventListener("order.created", e => window.got.push(JSON.parse(e.data)));
es.onerror = () => window.errs++;
</script>`, errandURL+"/v1/channels/orders.eu/events?after=0")
	}))
	defer page.Close()
	cfg := strings.Replace(channelConfig, "http: { max_body_bytes: 65536 }",
		`http: { max_body_bytes: 65536, cors: { origins: ["`+page.URL+`"] } }`, 1)
	s := startServer(t, cfg)
	errandURL = s.URL
	if code, _, body := s.do("POST", "/v1/channels/orders.eu/events", `{"type":"order.created","data":{"n":1}}`); code != http.StatusAccepted {
		t.Fatalf("publish: %d %s", code, body)
	}
	b.open(t, page.URL)
	b.waitJS(t, `window.got.length === 1 && window.got[0].data.n === 1`, 15*time.Second)
	if n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`window.errs`)); err != nil || n != 0 {
		t.Errorf("EventSource errors: %d (%v), want none", n, err)
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("the page reported errors: %q", errs)
	}
}
