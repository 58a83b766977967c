package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/oodguard/oodguard/internal/atomicfile"
)

// staging extracts a bundle into dir+UnverifiedSuffix and renames it to dir on commit.
type staging struct {
	dir, tmp string
}

// checkStagingFree fails when dir exists: Verify never replaces or merges into a directory.
func checkStagingFree(dir string) error {
	_, err := os.Lstat(dir)
	switch {
	case err == nil:
		return fmt.Errorf("staging dir %s: %w", dir, fs.ErrExist)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("staging dir: %w", err)
	}
	return nil
}

// newStaging creates an empty dir+UnverifiedSuffix, removing what an interrupted run left.
func newStaging(dir string) (*staging, error) {
	dir = filepath.Clean(dir)
	if err := checkStagingFree(dir); err != nil {
		return nil, err
	}
	s := &staging{dir: dir, tmp: dir + UnverifiedSuffix}
	if err := os.RemoveAll(s.tmp); err != nil {
		return nil, fmt.Errorf("staging dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("staging dir: %w", err)
	}
	if err := os.Mkdir(s.tmp, 0o755); err != nil {
		return nil, fmt.Errorf("staging dir: %w", err)
	}
	return s, nil
}

// stagedFile is a file being extracted; close syncs it to disk.
type stagedFile struct{ *os.File }

func (f stagedFile) close() error {
	if err := f.Sync(); err != nil {
		f.File.Close()
		return err
	}
	return f.File.Close()
}

// create opens a new file for the entry name, which checkEntry and the manifest vetted.
func (s *staging) create(name string) (stagedFile, error) {
	f, err := os.OpenFile(filepath.Join(s.tmp, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return stagedFile{}, fmt.Errorf("%s: %w", name, err)
	}
	return stagedFile{f}, nil
}

func (s *staging) writeFile(name string, data []byte) error {
	f, err := s.create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.File.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.close()
}

// commit makes the verified files visible under dir, durably.
func (s *staging) commit() error {
	if err := atomicfile.SyncDir(s.tmp); err != nil {
		return err
	}
	if err := os.Rename(s.tmp, s.dir); err != nil {
		return fmt.Errorf("staging dir: %w", err)
	}
	return atomicfile.SyncDir(filepath.Dir(s.dir))
}

// abort removes the partial extraction.
func (s *staging) abort() { os.RemoveAll(s.tmp) }
