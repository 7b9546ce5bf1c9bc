package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/errandhq/errand"
)

// session is one signed-in browser. It keeps the credential the user signed
// in with, never shown again, so that every request authenticates it anew
// (through the authenticator's cache): a revoked key or an expired token ends
// the session on its next request.
type session struct {
	id      string
	csrf    string
	token   string // the API key or access token; "" in development mode
	expires time.Time
	mu      sync.Mutex
	pending map[string]*selection // bulk actions waiting for their confirmation
}

// selection is what a bulk action will act on, counted when it was asked
// for and confirmed by its token.
type selection struct {
	action  string
	ids     []string
	filter  string // the list's query, to go back to
	expires time.Time
}

// sessions are the node's signed-in browsers, by session id. They live in
// memory: a restart signs everyone out, and behind a load balancer over
// several nodes a browser keeps to the node it signed in on (sticky
// sessions), or signs in again.
type sessions struct {
	mu    sync.Mutex
	byID  map[string]*session
	ttl   time.Duration
	now   func() time.Time
	swept time.Time
}

// maxSessions bounds the sessions a node keeps (in development mode every
// browser without a cookie gets one): past it, an arbitrary one is dropped.
const maxSessions = 100000

func newSessions(ttl time.Duration) *sessions {
	return &sessions{byID: map[string]*session{}, ttl: ttl, now: time.Now}
}

// create starts a session for token, ending at expires at the latest (a
// token's own expiry).
func (ss *sessions) create(token string, expires *time.Time) *session {
	now := ss.now()
	s := &session{id: randomToken(), csrf: randomToken(), token: token, expires: now.Add(ss.ttl)}
	if expires != nil && expires.Before(s.expires) {
		s.expires = *expires
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if now.Sub(ss.swept) > time.Minute {
		ss.swept = now
		for id, o := range ss.byID {
			if !now.Before(o.expires) {
				delete(ss.byID, id)
			}
		}
	}
	for id := range ss.byID {
		if len(ss.byID) < maxSessions {
			break
		}
		delete(ss.byID, id)
	}
	ss.byID[s.id] = s
	return s
}

// get returns the live session with id, or nil.
func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[id]
	if s == nil {
		return nil
	}
	if !ss.now().Before(s.expires) {
		delete(ss.byID, id)
		return nil
	}
	return s
}

// end forgets a session (sign-out, a credential that stopped working).
func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, id)
}

// count is how many sessions are held.
func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byID)
}

// validCSRF reports whether token is the session's CSRF token.
func (s *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

// hold keeps a selection for a bulk action and returns its token.
func (s *session) hold(sel *selection) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[string]*selection{}
	}
	now := time.Now()
	for k, o := range s.pending {
		if now.After(o.expires) {
			delete(s.pending, k)
		}
	}
	k := randomToken()
	s.pending[k] = sel
	return k
}

// take returns the selection held with token, once.
func (s *session) take(token string) *selection {
	s.mu.Lock()
	defer s.mu.Unlock()
	sel := s.pending[token]
	delete(s.pending, token)
	if sel == nil || time.Now().After(sel.expires) {
		return nil
	}
	return sel
}

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// cookieName is the session cookie's name: with the __Host- prefix over TLS,
// which browsers accept only when Secure, for path / and without a domain,
// so no other site or subdomain can set it.
func cookieName(r *http.Request) string {
	if r.TLS != nil {
		return "__Host-errand_session"
	}
	return "errand_session"
}

// setCookie sends the session's cookie.
func setCookie(w http.ResponseWriter, r *http.Request, s *session) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: s.id, Path: "/", Expires: s.expires,
		MaxAge: int(time.Until(s.expires).Seconds()), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// clearCookie removes the session's cookie from the browser.
func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// who is what a signed-in request carries: its session and principal.
type who struct {
	s *session
	p errand.Principal
}

type ctxKey struct{}

func withWho(ctx context.Context, w *who) context.Context { return context.WithValue(ctx, ctxKey{}, w) }

// whoOf is the request's session and principal (set by signedIn).
func whoOf(r *http.Request) *who {
	w, _ := r.Context().Value(ctxKey{}).(*who)
	return w
}
