package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/errandhq/errand"
)

// uiOps are the operations the dashboard's tests add to authzConfig's.
const uiOps = `  batch:
    retry: { max_attempts: 1 }
  other:
    retry: { max_attempts: 1 }
  flaky:
    retry: { max_attempts: 1 }
`

// The dashboard's end-to-end suite: the real binary with authentication, real
// Chromium, one tab signed in as one principal after another.

// TestUI: sign in with a key; live rows; a job's page follows progress to
// succeeded and downloads its artifact; retry from the page; a bulk retry of
// 50 failed jobs retries exactly those; <script> in an input is text; a
// request without the CSRF token is refused; sign-out ends the session; a
// reporter sees no cancel button and a forged cancel is refused; another
// tenant sees none of the first's jobs, even by URL; a revoked key's session
// ends; no page logs an error it was not meant to.
func TestUI(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(authzConfig(""), "  runs-here:\n", uiOps+"  runs-here:\n", 1) + "webhooks: { allow_private: [\"127.0.0.0/8\"] }\n"
	s := startServerWith(t, cfg, true)
	b := newBrowser(t)
	u := &uiDriver{t: t, s: s, b: b}

	dest := *screenshots
	if dest == "" {
		dest = t.TempDir()
	}
	for _, width := range []int64{390, 1280} {
		u.viewport(width)
		u.open("/ui/sign-in")
		u.screenshot(filepath.Join(dest, fmt.Sprintf("sign-in-%d.png", width)))
	}
	u.signIn(bootA, "/ui/jobs")
	u.waitJS(`document.querySelector("[data-live-list]")?.dataset.state === "open"`)

	// A job submitted over the API appears in the list without a reload.
	report := u.submit(bootA, "generate-report", `{"type":"monthly"}`)
	u.waitJS(fmt.Sprintf(`!!document.querySelector('tr[data-id=%q]')`, report.ID))

	// Its page shows progress moving, then succeeded; the artifact downloads.
	u.open("/ui/jobs/" + report.ID)
	u.waitJS(`document.querySelector("[data-live-job]")?.dataset.state === "open"`)
	lease := u.lease(bootA, "generate-report")
	for _, pct := range []int{30, 70} {
		u.call("POST", "/v1/leases/"+lease+"/heartbeat", fmt.Sprintf(`{"progress":{"percent":%d,"message":"rendering"}}`, pct), bootA, 200)
		u.waitJS(fmt.Sprintf(`document.getElementById("progress").value === %d`, pct))
	}
	status, _, body := s.do("PUT", "/v1/leases/"+lease+"/artifacts/report.pdf", "%PDF-1.7 the report", "Authorization", "Bearer "+bootA, "Content-Type", "application/pdf")
	if status != 201 {
		t.Fatalf("put artifact: %d %s", status, body)
	}
	u.call("POST", "/v1/leases/"+lease+"/complete", `{"result":{"pages":3}}`, bootA, 200)
	u.waitJS(`document.getElementById("status").textContent.includes("succeeded")`)
	u.waitJS(`document.querySelectorAll("#timeline li").length >= 5`)
	if got := u.evalAsync(`fetch(document.querySelector(".artifacts a").href).then(r => r.text())`); got != "%PDF-1.7 the report" {
		t.Errorf("the artifact downloaded as %q", got)
	}

	// A failed job is retried from its page.
	failed := u.failJobs(bootA, "flaky", 1)[0]
	u.open("/ui/jobs/" + failed)
	u.waitJS(`document.getElementById("status").textContent.includes("failed")`)
	if got := u.eval(`document.querySelector("#attempts tbody").innerText`); !strings.Contains(got, "failed") || !strings.Contains(got, "boom: it broke") {
		t.Errorf("the failed job's attempts read %q", got)
	}
	u.click("#retry")
	u.waitJS(`document.getElementById("status")?.textContent.includes("queued")`)
	if j := u.job(bootA, failed); j.Status != errand.StatusQueued {
		t.Errorf("after Retry the job is %s, want queued", j.Status)
	}

	// A bulk retry of the 50 failed jobs of one operation retries exactly those.
	batch := u.failJobs(bootA, "batch", 50)
	others := u.failJobs(bootA, "other", 5)
	u.open("/ui/jobs?operation=batch&status=failed")
	u.click("#bulk-retry")
	u.waitJS(`document.getElementById("bulk-count")?.textContent.includes("50")`)
	u.click("#bulk-confirm")
	u.waitJS(`document.querySelector(".flash")?.textContent.includes("retry: 50 jobs")`)
	for _, id := range batch {
		if j := u.job(bootA, id); j.Status != errand.StatusQueued {
			t.Errorf("batch job %s is %s after the bulk retry, want queued", id, j.Status)
		}
	}
	for _, id := range others {
		if j := u.job(bootA, id); j.Status != errand.StatusFailed {
			t.Errorf("other job %s is %s after batch's bulk retry, want failed", id, j.Status)
		}
	}

	// An input holding <script> is shown as text.
	xss := u.submit(bootA, "echo", `{"x":"<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"}`)
	u.open("/ui/jobs/" + xss.ID)
	u.waitJS(`document.getElementById("input").textContent.includes("<script>window.pwned=1</script>")`)
	u.waitJS(`window.pwned === undefined && !document.querySelector("#input script, #input img")`)

	// Search by idempotency key and by metadata.
	status, _, body = s.call("POST", "/v1/jobs", `{"operation":"echo","input":{},"metadata":{"customer":"c-42"}}`, bootA, "Idempotency-Key", "order-9001")
	var tagged errand.Job
	mustJSON(t, body, &tagged)
	if status != 202 {
		t.Fatalf("submit with a key: %d %s", status, body)
	}
	for _, q := range []string{"order-9001", "customer%3Dc-42", "c-42"} {
		u.open("/ui/jobs?q=" + q)
		if rows := u.eval(`[...document.querySelectorAll("#job-rows tr")].map(r => r.dataset.id).join(" ")`); rows != tagged.ID {
			t.Errorf("search %s found %q, want only %s", q, rows, tagged.ID)
		}
	}
	u.open("/ui/jobs?q=" + tagged.ID)
	if p := u.path(); p != "/ui/jobs/"+tagged.ID {
		t.Errorf("search by the job's id led to %s", p)
	}

	// A state-changing request without the CSRF token is refused.
	queued := u.submit(bootA, "echo", `{}`)
	u.open("/ui/jobs/" + queued.ID)
	if got := u.evalAsync(fmt.Sprintf(`fetch("/ui/jobs/%s/cancel", {method: "POST"}).then(r => String(r.status))`, queued.ID)); got != "403" {
		t.Errorf("cancel without the CSRF token answered %s, want 403", got)
	}
	if j := u.job(bootA, queued.ID); j.Status != errand.StatusQueued {
		t.Errorf("a cancel without the token changed the job to %s", j.Status)
	}
	u.expectErrors("status of 403")
	if got := u.evalAsync(fmt.Sprintf(`fetch("/ui/jobs/%s/cancel", {method: "POST", headers: {"X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content}}).then(r => String(r.status))`, queued.ID)); got != "200" {
		t.Errorf("cancel with the token answered %s, want 200 (after its redirect)", got)
	}
	if j := u.job(bootA, queued.ID); j.Status != errand.StatusCanceled {
		t.Errorf("a cancel with the token left the job %s", j.Status)
	}

	// Sign-out ends the session: its cookie no longer works.
	cookie := u.sessionCookie()
	u.signOut()
	if status, loc := u.withCookie("/ui/jobs", cookie); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/sign-in") {
		t.Errorf("GET /ui/jobs with a signed-out session's cookie = %d (Location %q), want 303 to sign-in", status, loc)
	}
	if status, _ := u.withCookie("/ui/jobs/"+report.ID+"/artifacts/report.pdf", cookie); status != http.StatusSeeOther {
		t.Errorf("an artifact with a signed-out session's cookie = %d, want 303", status)
	}

	// A reporter (no jobs:cancel) sees no cancel button; a forged cancel is refused.
	_, reporter := newKey(t, s, bootA, "rep", "reporter")
	own := u.submit(reporter, "generate-report", `{"type":"weekly"}`)
	u.signIn(reporter, "/ui/jobs/"+own.ID)
	u.waitJS(`document.getElementById("status").textContent.includes("queued")`)
	if n := u.eval(`document.querySelectorAll("#cancel, #retry, #delete, #bulk-retry").length`); n != "0" {
		t.Errorf("the reporter is offered %s actions it lacks the permission for", n)
	}
	if got := u.evalAsync(fmt.Sprintf(`fetch("/ui/jobs/%s/cancel", {method: "POST", headers: {"X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content}}).then(r => String(r.status))`, own.ID)); got != "403" {
		t.Errorf("the reporter's forged cancel answered %s, want 403", got)
	}
	if j := u.job(bootA, own.ID); j.Status != errand.StatusQueued || j.CancelRequested {
		t.Errorf("the reporter's forged cancel changed the job: %s", j.Status)
	}
	u.expectErrors("status of 403")
	u.open("/ui/jobs")
	if html := u.eval(`document.getElementById("job-rows").innerHTML`); strings.Contains(html, report.ID) || !strings.Contains(html, own.ID) {
		t.Errorf("the reporter's list shows another's job or misses its own")
	}
	u.signOut()

	// Tenant B sees none of tenant A's jobs, endpoints or keys, even by URL.
	var ep endpointCreated
	mustJSON(t, u.call("POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/acme-hooks","description":"acme's"}`, bootA, 201), &ep)
	u.signIn(bootB, "/ui/webhooks")
	if html := u.eval(`document.body.innerHTML`); strings.Contains(html, ep.ID) || strings.Contains(html, "acme-hooks") {
		t.Errorf("tenant B's webhooks page shows tenant A's endpoint")
	}
	u.open("/ui/access")
	if html := u.eval(`document.body.innerHTML`); strings.Contains(html, `"rep"`) || strings.Contains(html, ">rep<") || !strings.Contains(html, "API keys") {
		t.Errorf("tenant B's access page shows tenant A's key (or no keys section)")
	}
	u.open("/ui/webhooks/" + ep.ID)
	if body := u.eval(`document.body.innerText`); strings.Contains(body, "acme-hooks") || !strings.Contains(body, "Not Found") {
		t.Errorf("tenant B opens tenant A's endpoint by URL: %s", body)
	}
	u.open("/ui/jobs")
	page := u.eval(`document.body.innerHTML`)
	for _, id := range append([]string{report.ID, failed, xss.ID, own.ID}, batch...) {
		if strings.Contains(page, id) {
			t.Fatalf("tenant B's job list shows tenant A's job %s", id)
		}
	}
	for _, path := range []string{"/ui/jobs/" + report.ID, "/ui/jobs/" + report.ID + "/artifacts/report.pdf", "/ui/jobs?q=" + report.ID} {
		u.open(path)
		if body := u.eval(`document.body.innerText`); strings.Contains(body, "pages") || strings.Contains(body, "%PDF") || strings.Contains(body, "monthly") {
			t.Errorf("tenant B reads tenant A's job at %s: %s", path, body)
		}
	}
	u.expectErrors("status of 404")
	u.signOut()

	// A revoked key's session stops working at its next request.
	keyID, key := newKey(t, s, bootA, "short-lived", "admin")
	u.signIn(key, "/ui/jobs")
	u.waitJS(`document.querySelector("[data-live-list]")?.dataset.state === "open"`)
	u.call("DELETE", "/v1/keys/"+keyID, "", bootA, 200)
	// The open page's stream ends with the key and the page reloads, to sign-in.
	u.waitFor(func() bool { return strings.HasPrefix(u.path(), "/ui/sign-in") })
	u.waitJS(`document.readyState === "complete"`)
	u.open("/ui/jobs")
	if p := u.path(); !strings.HasPrefix(p, "/ui/sign-in") {
		t.Errorf("with a revoked key's session, /ui/jobs led to %s", p)
	}

	// An OAuth access token (client credentials of a key) signs in as the key.
	oauthID, oauthKey := newKey(t, s, bootA, "oauth-client", "admin")
	status, _, body = s.do("POST", "/v1/oauth/token", "grant_type=client_credentials&client_id="+oauthID+"&client_secret="+oauthKey,
		"Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	mustJSON(t, body, &tok)
	if status != 200 || tok.AccessToken == "" {
		t.Fatalf("token: %d %s", status, body)
	}
	u.signIn(tok.AccessToken, "/ui/jobs/"+report.ID)
	u.waitJS(`document.getElementById("status").textContent.includes("succeeded")`)
	if me := u.eval(`document.querySelector(".tenant").textContent`); me != "acme" {
		t.Errorf("signed in with an access token, the tenant shown is %q", me)
	}
	u.signOut()

	if errs := u.unexpected(); len(errs) > 0 {
		t.Errorf("the pages logged errors: %q", errs)
	}
}

// uiDriver drives the dashboard in one tab.
type uiDriver struct {
	t        *testing.T
	s        *server
	b        *browser
	expected int // errors the browser logged that the test caused on purpose
	seen     []string
}

func (u *uiDriver) open(path string) { u.t.Helper(); u.b.open(u.t, u.s.URL+path) }

func (u *uiDriver) waitJS(expr string) { u.t.Helper(); u.b.waitJS(u.t, expr, 10*time.Second) }

func (u *uiDriver) eval(expr string) string {
	u.t.Helper()
	v, err := chromedp.Run(u.b.ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		u.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return fmt.Sprint(v)
}

func (u *uiDriver) evalAsync(expr string) string {
	u.t.Helper()
	v, err := chromedp.Run(u.b.ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		u.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// click clicks the element and waits for the page it leads to.
func (u *uiDriver) click(sel string) {
	u.t.Helper()
	u.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	u.eval(fmt.Sprintf(`document.querySelector(%q).click(); 1`, sel))
	time.Sleep(300 * time.Millisecond) // the form's navigation
	u.waitJS(`document.readyState === "complete"`)
}

func (u *uiDriver) path() string {
	loc, err := chromedp.Run(u.b.ctx, chromedp.Location())
	if err != nil {
		u.t.Fatal(err)
	}
	return strings.TrimPrefix(loc, u.s.URL)
}

// signIn signs in with token from next's sign-in page and waits for next.
func (u *uiDriver) signIn(token, next string) {
	u.t.Helper()
	u.open(next)
	if p := u.path(); !strings.HasPrefix(p, "/ui/sign-in") {
		u.t.Fatalf("signed out, %s led to %s, want the sign-in page", next, p)
	}
	u.eval(fmt.Sprintf(`document.getElementById("token").value = %q; document.querySelector("form").requestSubmit(); 1`, token))
	u.waitFor(func() bool { return u.path() == next })
	u.waitJS(`document.readyState === "complete" && !!document.querySelector(".me")`)
}

func (u *uiDriver) signOut() {
	u.t.Helper()
	u.click(`form[action="/ui/sign-out"] button`)
	u.waitFor(func() bool { return strings.HasPrefix(u.path(), "/ui/sign-in") })
}

func (u *uiDriver) waitFor(ok func() bool) {
	u.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			u.t.Fatalf("still not there after 10s (at %s; page errors %q)", u.path(), u.b.Errors())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sessionCookie is the tab's session cookie (HttpOnly: read through DevTools).
func (u *uiDriver) sessionCookie() string {
	u.t.Helper()
	got, err := chromedp.Run(u.b.ctx, func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
	})
	if err != nil {
		u.t.Fatal(err)
	}
	for _, c := range got.Cookies {
		if c.Name == "errand_session" {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				u.t.Errorf("the session cookie is not HttpOnly and SameSite=Strict: %+v", c)
			}
			return c.Value
		}
	}
	u.t.Fatalf("no session cookie among %d", len(got.Cookies))
	return ""
}

// withCookie GETs path with the session cookie value, not following redirects.
func (u *uiDriver) withCookie(path, cookie string) (int, string) {
	u.t.Helper()
	req, _ := http.NewRequest("GET", u.s.URL+path, nil)
	req.AddCookie(&http.Cookie{Name: "errand_session", Value: cookie})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// expectErrors marks the errors logged since the last look that contain
// what as caused on purpose (a refused fetch is logged by Chromium).
func (u *uiDriver) expectErrors(what string) {
	errs := u.b.Errors()
	for _, e := range errs[len(u.seen):] {
		if !strings.Contains(e, what) {
			u.seen = append(u.seen, e)
			continue
		}
		u.seen = append(u.seen, "")
	}
}

// unexpected are the errors logged that the test did not cause on purpose.
func (u *uiDriver) unexpected() []string {
	u.expectErrors("\x00")
	var out []string
	for _, e := range u.seen {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

func (u *uiDriver) call(method, path, body, token string, want int) []byte {
	u.t.Helper()
	status, _, b := u.s.call(method, path, body, token)
	if status != want {
		u.t.Fatalf("%s %s = %d %s, want %d", method, path, status, b, want)
	}
	return b
}

func (u *uiDriver) submit(token, op, input string) errand.Job {
	u.t.Helper()
	var j errand.Job
	mustJSON(u.t, u.call("POST", "/v1/jobs", `{"operation":"`+op+`","input":`+input+`}`, token, 202), &j)
	return j
}

func (u *uiDriver) job(token, id string) errand.Job {
	u.t.Helper()
	var j errand.Job
	status, _, b := u.s.call("GET", "/v1/jobs/"+id, "", token)
	if status != 200 {
		u.t.Fatalf("GET job %s: %d %s", id, status, b)
	}
	mustJSON(u.t, b, &j)
	return j
}

// lease leases the next job of op and returns its lease id.
func (u *uiDriver) lease(token, op string) string {
	u.t.Helper()
	status, ls := leaseAs(u.t, u.s, token, 1, op)
	if status != 200 || len(ls) != 1 {
		u.t.Fatalf("lease %s: %d %v", op, status, ls)
	}
	return ls[0].ID
}

// failJobs submits n jobs of op and fails each at its only attempt.
func (u *uiDriver) failJobs(token, op string, n int) []string {
	u.t.Helper()
	var ids []string
	for range n {
		ids = append(ids, u.submit(token, op, `{}`).ID)
	}
	status, ls := leaseAs(u.t, u.s, token, n, op)
	if status != 200 || len(ls) != n {
		u.t.Fatalf("lease %d of %s: %d, %d leases", n, op, status, len(ls))
	}
	for _, l := range ls {
		u.call("POST", "/v1/leases/"+l.ID+"/fail", `{"error":{"code":"boom","message":"it broke"},"retry":false}`, token, 200)
	}
	return ids
}

// TestUIPortal: a tenant's admin serves itself in the dashboard — adds a
// webhook endpoint (its secret shown once), disables and enables it,
// rotates its secret, redelivers a delivery; makes an API key with a role
// (its token shown once, and it signs in) and revokes it; reads the audit
// log filtered; publishes to a channel and sees it in the live tail.
func TestUIPortal(t *testing.T) {
	t.Parallel()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer hook.Close()
	cfg := strings.Replace(authzConfig(""), "  runs-here:\n", uiOps+"  runs-here:\n", 1) + "webhooks: { allow_private: [\"127.0.0.0/8\"] }\n"
	s := startServerWith(t, cfg, true)
	u := &uiDriver{t: t, s: s, b: newBrowser(t)}
	u.signIn(bootA, "/ui/webhooks")

	// An endpoint, from the form; its secret is on the answer and nowhere after.
	u.eval(fmt.Sprintf(`document.querySelector('input[name="url"]').value = %q;
		document.querySelector('input[name="events"]').value = "job.succeeded, job.failed"; 1`, hook.URL+"/hooks"))
	u.click("#create-endpoint")
	u.waitJS(`document.getElementById("new-secret")?.textContent.startsWith("whsec_")`)
	secret := u.eval(`document.getElementById("new-secret").textContent`)
	epPath := u.path()
	u.open("/ui/webhooks")
	epURL := u.eval(`document.querySelector("tbody a").getAttribute("href")`)
	u.open(epURL)
	if html := u.eval(`document.body.innerHTML`); strings.Contains(html, secret) {
		t.Errorf("the endpoint's secret is shown again (created at %s)", epPath)
	}
	u.click("#disable")
	u.waitJS(`document.body.textContent.includes("disabled") && !!document.getElementById("enable")`)
	u.click("#enable")
	u.waitJS(`!!document.getElementById("disable")`)
	u.eval(`window.confirm = () => true; 1`)
	u.click("#rotate")
	u.waitJS(`document.getElementById("new-secret")?.textContent.startsWith("whsec_")`)
	if rotated := u.eval(`document.getElementById("new-secret").textContent`); rotated == secret {
		t.Errorf("rotating kept the secret")
	}

	// A job finishes: its delivery is listed with its attempt, and redelivered.
	lease := u.lease(bootA, u.submit(bootA, "echo", `{}`).Operation)
	u.call("POST", "/v1/leases/"+lease+"/complete", `{"result":{}}`, bootA, 200)
	u.waitFor(func() bool {
		u.open(epURL)
		return u.eval(`document.querySelectorAll(".delivery tbody tr td").length >= 5`) == "true"
	})
	if got := u.eval(`document.querySelector(".delivery tbody tr td:nth-child(3)").textContent`); got != "204" {
		t.Errorf("the delivery's attempt shows status %q, want 204", got)
	}
	u.eval(`document.querySelector(".delivery").open = true; 1`)
	u.click(`.delivery form button`)
	u.waitJS(`document.querySelector(".flash")?.textContent.includes("Redelivering")`)

	// A key, from the form: its token is shown once and signs in; then revoked.
	u.open("/ui/access")
	u.eval(`document.querySelector("details.panel").open = true;
		document.querySelector('input[name="name"]').value = "portal-reporter";
		document.querySelector('input[name="roles"]').value = "reporter"; 1`)
	u.click("#create-key")
	u.waitJS(`document.getElementById("new-token")?.textContent.startsWith("ek_")`)
	token := u.eval(`document.getElementById("new-token").textContent`)
	if status, _, b := s.call("GET", "/v1/me", "", token); status != 200 || !strings.Contains(string(b), `"acme"`) {
		t.Errorf("the new key: GET /v1/me = %d %s", status, b)
	}
	u.open("/ui/access")
	if strings.Contains(u.eval(`document.body.innerHTML`), token) {
		t.Errorf("the key's token is shown again")
	}
	u.eval(`window.confirm = () => true; 1`)
	u.click(`tr:has(td:first-child) form[action$="/revoke"] button`)
	u.waitJS(`document.querySelector(".flash")?.textContent.includes("Revoked")`)
	if status, _, _ := s.call("GET", "/v1/me", "", token); status != 401 {
		t.Errorf("a key revoked in the dashboard still authenticates: %d", status)
	}
	u.open("/ui/access?action=keys:revoke")
	if n := u.eval(`[...document.querySelectorAll("tbody code")].filter(c => c.textContent === "keys:revoke").length`); n == "0" {
		t.Errorf("the audit log filtered by keys:revoke shows no revocation")
	}

	// A channel: publish from the form, see it in the live tail.
	u.open("/ui/channels/orders.eu")
	u.waitJS(`document.querySelector("[data-live-channel]")?.dataset.state === "open"`)
	u.call("POST", "/v1/channels/orders.eu/events", `{"type":"order.created","data":{"from":"the api"}}`, bootA, 202)
	u.waitJS(`document.getElementById("tail").textContent.includes("the api")`)
	u.eval(`document.querySelector('input[name="type"]').value = "order.noted";
		document.querySelector('textarea[name="data"]').value = '{"from":"the form"}'; 1`)
	u.click("#publish")
	u.waitJS(`document.getElementById("tail")?.textContent.includes("the form")`)

	if errs := u.unexpected(); len(errs) > 0 {
		t.Errorf("the pages logged errors: %q", errs)
	}
}
