package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/errandhq/errand"
)

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyPrincipal
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

// principal is who the request runs as; set by the authenticate middleware.
func principal(r *http.Request) errand.Principal {
	p, _ := r.Context().Value(keyPrincipal).(errand.Principal)
	return p
}

// statusRecorder remembers the status for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// observe gives each request an id (X-Request-Id, kept when the client sends a
// sane one), logs it and tells meter of it when done, and turns a panic into
// a 500 problem. The route pattern the mux matched is set on the request
// observe was handed, as ServeMux does on the one it is handed, so that
// what wraps the API (the tracing handler) can name the request by it.
func observe(log *slog.Logger, meter Meter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, in *http.Request) {
		start := time.Now()
		r := in
		id := r.Header.Get("X-Request-Id")
		if len(id) == 0 || len(id) > 64 || !printableASCII(id) { // it is logged and audited as text
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), keyRequestID, id))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				writeError(rec, r, log, fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
			}
			in.Pattern = r.Pattern
			status := cmpOr(rec.status, http.StatusOK) // a hijacked stream wrote its head itself
			meter.Request(r.Pattern, r.Method, status, time.Since(start), isStream(r, rec, rec.status))
			level := slog.LevelDebug
			if rec.status >= 400 {
				level = slog.LevelInfo
			}
			log.LogAttrs(r.Context(), level, "request", slog.String("request_id", id),
				slog.String("method", r.Method), slog.String("path", errand.RedactLeases(r.URL.Path)),
				slog.Int("status", rec.status), slog.Duration("duration", time.Since(start)))
		}()
		next.ServeHTTP(rec, r)
	})
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// limitBody caps request bodies at n bytes. A body over the cap is answered
// 413 — but first read and thrown away, up to drainLimit bytes and for at
// most drainTime: clients that send the whole body before they read the
// answer (Python's urllib and requests, curl without Expect) would otherwise
// see the connection reset under them instead of the problem, as nginx's
// lingering close avoids.
func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := &cappedBody{ReadCloser: r.Body, left: n, limit: n}
		if r.ContentLength > n {
			body.drain(w)
			writeError(w, r, slog.Default(), errand.Errorf(errand.ETOOLARGE, "the body is larger than %d bytes", n))
			return
		}
		r.Body = body
		next.ServeHTTP(&drainOnTooLarge{ResponseWriter: w, body: body}, r)
	})
}

// Draining an oversized body: at most this much, for at most this long.
const (
	drainLimit = 64 << 20
	drainTime  = 10 * time.Second
)

// cappedBody is a request body that fails reads past its limit with
// *http.MaxBytesError (as http.MaxBytesReader does) and can drain the rest.
type cappedBody struct {
	io.ReadCloser
	left, limit int64
	over        bool
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.over {
		return 0, &http.MaxBytesError{Limit: b.limit}
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	if int64(n) > b.left {
		b.over = true
		return int(b.left), &http.MaxBytesError{Limit: b.limit}
	}
	b.left -= int64(n)
	return n, err
}

// drain reads what the client still sends (bounded) and marks the answer as
// the connection's last.
func (b *cappedBody) drain(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(drainTime))
	_, _ = io.CopyN(io.Discard, b.ReadCloser, drainLimit)
}

// drainOnTooLarge drains the body before the head of a 413 goes out.
type drainOnTooLarge struct {
	http.ResponseWriter
	body *cappedBody
}

func (d *drainOnTooLarge) WriteHeader(code int) {
	if code == http.StatusRequestEntityTooLarge && d.body.over {
		d.body.drain(d.ResponseWriter)
	}
	d.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines, hijack).
func (d *drainOnTooLarge) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// plainText refuses a request whose path or query holds a control character
// (NUL above all) or bytes that are not UTF-8. No name or id errand keeps has
// them, and PostgreSQL cannot compare text with them: the query would fail,
// and with it the group commit it ran in, or the audit entry naming the path.
func plainText(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !plainString(r.URL.Path) || !plainQuery(r.URL.RawQuery) {
			writeError(w, r, log, errand.Errorf(errand.EINVALID,
				"the path and query must be UTF-8 text without control characters"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// plainString reports whether s is UTF-8 without control characters.
func plainString(s string) bool {
	for _, c := range s {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == utf8.RuneError {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// plainQuery reports whether every name and value of a raw query is plain
// text; a query that does not parse is left to the handler.
func plainQuery(raw string) bool {
	if printableASCII(raw) && !strings.Contains(raw, "%") {
		return true
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return true
	}
	for k, vs := range q {
		if !plainString(k) {
			return false
		}
		for _, v := range vs {
			if !plainString(v) {
				return false
			}
		}
	}
	return true
}
