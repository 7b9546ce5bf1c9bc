package httpapi

import (
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/queue"
)

func handlePutArtifact(log *slog.Logger, q *queue.Queue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := leasing(r, q).AddArtifact(r.Context(), r.PathValue("lease_id"), r.PathValue("name"), r.Header.Get("Content-Type"), r.Body)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			err = errand.Errorf(errand.ETOOLARGE, "the artifact is larger than the limit of %d bytes", tooBig.Limit)
		}
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		w.Header().Set("Location", a.URL)
		encode(w, http.StatusCreated, a)
	})
}

// handleGetArtifact serves an artifact with its type and length, Range requests
// and conditional GETs (http.ServeContent).
func handleGetArtifact(log *slog.Logger, jobs *job.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, f, err := jobs.Artifact(r.Context(), principal(r), r.PathValue("id"), r.PathValue("name"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		defer f.Close()
		h := w.Header()
		h.Set("Content-Type", a.ContentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		h.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": a.Name}))
		h.Set("ETag", strconv.Quote(a.SHA256))
		http.ServeContent(w, r, a.Name, f.ModTime(), f)
	})
}
