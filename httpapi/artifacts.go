package httpapi

import (
	"errors"
	"mime"
	"net/http"
	"strconv"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/queue"
)

func handlePutArtifact(acc *access, q *queue.Queue) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		a, err := leasing(r, q).AddArtifact(r.Context(), r.PathValue("lease_id"), r.PathValue("name"), r.Header.Get("Content-Type"), r.Body)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			err = errand.Errorf(errand.ETOOLARGE, "the artifact is larger than the limit of %d bytes", tooBig.Limit)
		}
		if err != nil {
			return err
		}
		w.Header().Set("Location", a.URL)
		encode(w, http.StatusCreated, a)
		return nil
	})
}

// handleGetArtifact serves an artifact with its type and length, Range requests
// and conditional GETs (http.ServeContent).
func handleGetArtifact(acc *access, jobs *job.Service) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		a, f, err := jobs.Artifact(r.Context(), principal(r), r.PathValue("id"), r.PathValue("name"))
		if err != nil {
			return err
		}
		defer f.Close()
		h := w.Header()
		h.Set("Content-Type", a.ContentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		h.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": a.Name}))
		h.Set("ETag", strconv.Quote(a.SHA256))
		http.ServeContent(w, r, a.Name, f.ModTime(), f)
		return nil
	})
}
