package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/artifact"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/storage/sqlrow"
)

// Artifacts is an artifact.Store in the database: every node reads what any
// node stored. Each artifact is one row, read whole (artifacts.max_bytes bounds
// it; 100 MiB by default).
type Artifacts struct{ s *Store }

var _ artifact.Store = (*Artifacts)(nil)

// Artifacts returns the store's artifact store.
func (s *Store) Artifacts() *Artifacts { return &Artifacts{s: s} }

// Put stores r as jobID/name, refusing more than limit bytes.
func (a *Artifacts) Put(ctx context.Context, jobID, name string, r io.Reader, limit int64) (int64, string, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, limit+1))
	if err != nil {
		return 0, "", fmt.Errorf("read artifact: %w", err)
	}
	if n > limit {
		return 0, "", errand.Errorf(errand.ETOOLARGE, "the artifact is larger than %d bytes", limit)
	}
	sum := sha256.Sum256(buf.Bytes())
	_, err = a.s.pool.Exec(ctx, `INSERT INTO artifacts (job_id, name, data, mod_time) VALUES ($1, $2, $3, $4)
		ON CONFLICT (job_id, name) DO UPDATE SET data = excluded.data, mod_time = excluded.mod_time`,
		jobID, name, buf.Bytes(), time.Now().UnixMicro())
	if err != nil {
		return 0, "", fmt.Errorf("store artifact: %w", interpretError(err))
	}
	return n, hex.EncodeToString(sum[:]), nil
}

// Open returns an artifact for reading.
func (a *Artifacts) Open(ctx context.Context, jobID, name string) (artifact.File, error) {
	var data []byte
	var mod int64
	err := a.s.pool.QueryRow(ctx, `SELECT data, mod_time FROM artifacts WHERE job_id = $1 AND name = $2`, jobID, name).Scan(&data, &mod)
	if err != nil {
		err = interpretError(err)
		if err == storage.ErrNotFound {
			return nil, errand.Errorf(errand.ENOTFOUND, "artifact %q does not exist", name)
		}
		return nil, err
	}
	return &file{Reader: bytes.NewReader(data), mod: storage.FromMicros(mod)}, nil
}

// DeleteJob removes every artifact of a job.
func (a *Artifacts) DeleteJob(ctx context.Context, jobID string) error {
	_, err := a.s.pool.Exec(ctx, `DELETE FROM artifacts WHERE job_id = $1`, jobID)
	return interpretError(err)
}

// Jobs lists the job ids that have artifacts.
func (a *Artifacts) Jobs(ctx context.Context) ([]string, error) {
	rows, err := a.s.pool.Query(ctx, `SELECT DISTINCT job_id FROM artifacts`)
	ids, err := sqlrow.Collect(rows, err, sqlrow.ScanID)
	return ids, interpretError(err)
}

type file struct {
	*bytes.Reader
	mod time.Time
}

func (f *file) Close() error       { return nil }
func (f *file) ModTime() time.Time { return f.mod }
