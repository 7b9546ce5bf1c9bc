package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/errandhq/errand"
)

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyPrincipal
	keyAccess
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
// sane one), logs it when done and turns a panic into a 500 problem.
func observe(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if len(id) == 0 || len(id) > 64 {
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

// limitBody caps request bodies at n bytes.
func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			writeError(w, r, slog.Default(), errand.Errorf(errand.ETOOLARGE, "the body is larger than %d bytes", n))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}
