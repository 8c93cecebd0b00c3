// Package atomicfile replaces and moves files durably: a crash at any point
// leaves either the old state or the new one, and a call that returned nil
// survives a power loss.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// WriteFile replaces path with data, with permission bits perm (exactly:
// the umask does not apply). It writes a temporary file in path's directory,
// fsyncs it, renames it over path and fsyncs the directory. On error path
// keeps its old content (or stays absent) and no temporary file remains,
// except after a failed directory fsync: then path has the new content but
// it may not survive a power loss.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs directory dir, so that creations, renames and removals in
// it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// MkdirAll creates directory dir and the missing directories above it, like
// os.MkdirAll (perm before the umask), and fsyncs the parent of each one it
// created, parents first, so that a call that returned nil survives a power
// loss. created reports whether dir was missing.
func MkdirAll(dir string, perm os.FileMode) (created bool, err error) {
	var missing []string // deepest first
	for d := filepath.Clean(dir); ; {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return false, err
	}
	for _, d := range slices.Backward(missing) {
		if err := SyncDir(filepath.Dir(d)); err != nil {
			return true, err
		}
	}
	return len(missing) > 0, nil
}

// QuarantineSuffix is inserted between a quarantined file's name and the
// UTC time it was moved aside.
const QuarantineSuffix = ".quarantined-"

// Quarantine moves the damaged file or directory at path aside, beside it,
// as path + ".quarantined-" + the UTC time at (with "-2", "-3"… when that
// name is taken), and fsyncs the directory. Damaged state is kept for
// inspection, never deleted. It returns the new path.
func Quarantine(path string, at time.Time) (string, error) {
	base := path + QuarantineSuffix + at.UTC().Format("20060102T150405Z")
	dst := base
	for n := 2; ; n++ {
		_, err := os.Lstat(dst)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return "", err
		}
		dst = fmt.Sprintf("%s-%d", base, n)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	return dst, SyncDir(filepath.Dir(path))
}
