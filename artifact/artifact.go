// Package artifact keeps the files jobs produce. The filesystem store writes each
// artifact to a temporary file, syncs it and renames it into place, so a reader
// never sees half a file; every path is confined to the store's root (os.Root), so
// no name, however hostile, reaches outside it.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// Store keeps artifact bytes by job id and name. The PostgreSQL issue adds a
// store every node can read behind this same interface.
type Store interface {
	// Put stores r as jobID/name, refusing more than limit bytes.
	Put(ctx context.Context, jobID, name string, r io.Reader, limit int64) (size int64, sha string, err error)
	// Open returns the artifact for reading (with Seek, for Range requests).
	Open(ctx context.Context, jobID, name string) (File, error)
	// DeleteJob removes every artifact of a job.
	DeleteJob(ctx context.Context, jobID string) error
	// Jobs lists the job ids that have artifacts (for the orphan sweep).
	Jobs(ctx context.Context) ([]string, error)
}

// File is an open artifact.
type File interface {
	io.ReadSeekCloser
	ModTime() time.Time
}

// FS is a Store on the local filesystem.
type FS struct {
	root *os.Root
}

var _ Store = (*FS)(nil)

// OpenFS opens (creating, readable by errand's user only) the directory dir as
// an artifact store.
func OpenFS(dir string) (*FS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("artifact directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact directory: %w", err)
	}
	return &FS{root: root}, nil
}

// Close releases the directory.
func (s *FS) Close() error { return s.root.Close() }

func check(jobID, name string) error {
	if !errand.ValidID("job", jobID) {
		return errand.Errorf(errand.EJOBNOTFOUND, "job %q does not exist", jobID)
	}
	if !errand.ValidArtifactName(name) {
		return errand.Errorf(errand.EINVALID, "artifact name %q: use 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'", name)
	}
	return nil
}

// Put writes the artifact atomically.
func (s *FS) Put(ctx context.Context, jobID, name string, r io.Reader, limit int64) (int64, string, error) {
	if err := check(jobID, name); err != nil {
		return 0, "", err
	}
	if err := s.root.Mkdir(jobID, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return 0, "", writeError("artifact directory", err)
	}
	tmp := path.Join(jobID, ".upload-"+errand.NewID("tmp")[4:])
	f, err := s.root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, "", writeError("create artifact", err)
	}
	defer s.root.Remove(tmp) //nolint:errcheck // gone after the rename
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(&ctxReader{ctx, r}, limit+1))
	if err == nil && n > limit {
		err = errand.Errorf(errand.ETOOLARGE, "artifact %s is larger than the limit of %d bytes", name, limit)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", writeError("write artifact", err)
	}
	if err := s.root.Rename(tmp, path.Join(jobID, name)); err != nil {
		return 0, "", writeError("store artifact", err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// writeError is storage_full when the disk (or the user's quota) is full,
// else err wrapped with what was being done. The temporary file is removed
// either way, so a failed upload leaves nothing behind.
func writeError(doing string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return storage.Full()
	}
	var e *errand.Error
	if errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// Open opens an artifact for reading.
func (s *FS) Open(_ context.Context, jobID, name string) (File, error) {
	if err := check(jobID, name); err != nil {
		return nil, err
	}
	f, err := s.root.Open(path.Join(jobID, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errand.Errorf(errand.ENOTFOUND, "artifact %s of job %s does not exist", name, jobID)
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &file{File: f, mod: st.ModTime()}, nil
}

// DeleteJob removes a job's artifacts.
func (s *FS) DeleteJob(_ context.Context, jobID string) error {
	if !errand.ValidID("job", jobID) {
		return nil
	}
	if err := s.root.RemoveAll(jobID); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete artifacts of %s: %w", jobID, err)
	}
	return nil
}

// Jobs lists the job directories in the store.
func (s *FS) Jobs(_ context.Context) ([]string, error) {
	entries, err := fs.ReadDir(s.root.FS(), ".")
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && errand.ValidID("job", e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

type file struct {
	*os.File
	mod time.Time
}

func (f *file) ModTime() time.Time { return f.mod }

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
