package queue

import (
	"context"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// AddArtifact stores r as the artifact name of the job a held lease is on and
// records it on the job. The lease is checked before the upload (so a stale
// worker does not stream for nothing) and again when the artifact is recorded.
func (q *Queue) AddArtifact(ctx context.Context, leaseID, name, contentType string, r io.Reader) (*errand.Artifact, error) {
	if q.cfg.Artifacts == nil {
		return nil, errand.Errorf(errand.EINVALID, "this errand keeps no artifacts")
	}
	if !errand.ValidArtifactName(name) {
		return nil, errand.Errorf(errand.EINVALID, "artifact name %q: use 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'", name)
	}
	contentType, err := cleanContentType(contentType)
	if err != nil {
		return nil, err
	}
	j, err := q.onLease(ctx, leaseID, func(storage.Tx, *errand.Job, time.Time) error { return nil })
	if err != nil {
		return nil, err
	}
	size, sum, err := q.cfg.Artifacts.Put(ctx, j.ID, name, r, q.cfg.MaxArtifactBytes)
	if err != nil {
		return nil, err
	}
	var out errand.Artifact
	_, err = q.onLease(ctx, leaseID, func(tx storage.Tx, j *errand.Job, _ time.Time) error {
		j.AddArtifact(errand.Artifact{Name: name, ContentType: contentType, Size: size, SHA256: sum})
		for _, a := range j.Artifacts {
			if a.Name == name {
				out = a
			}
		}
		return tx.UpdateJob(j)
	})
	return &out, err
}

// cleanContentType checks a media type; empty means application/octet-stream.
func cleanContentType(ct string) (string, error) {
	if strings.TrimSpace(ct) == "" {
		return "application/octet-stream", nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || len(ct) > 200 {
		return "", errand.Errorf(errand.EINVALID, "Content-Type %q is not a media type", ct)
	}
	return mime.FormatMediaType(mt, params), nil
}
