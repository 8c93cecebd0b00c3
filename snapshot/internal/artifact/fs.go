package artifact

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"lukechampine.com/blake3"
)

// DestKind is what an import puts at its destination.
type DestKind uint8

const (
	// DestDir is a directory (a Pebble fold, an export artifact): the
	// destination may be absent or an empty directory.
	DestDir DestKind = iota
	// DestFile is a file (an append-log fold): the destination must be
	// absent.
	DestFile
)

// checkAvailable accepts an absent destination or, for a directory, an
// empty directory.
func checkAvailable(dest string, kind DestKind) error {
	fi, err := os.Lstat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() || kind == DestFile {
		return invalidf("destination %s already exists", dest)
	}
	ents, err := os.ReadDir(dest)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return invalidf("destination %s exists and is not empty", dest)
	}
	return nil
}

// parentOf returns the absolute parent directory of dest.
func parentOf(dest string) (abs, parent string, err error) {
	abs, err = filepath.Abs(dest)
	if err != nil {
		return "", "", err
	}
	parent = filepath.Dir(abs)
	if parent == abs {
		return "", "", invalidf("destination %s has no parent directory", dest)
	}
	return abs, parent, nil
}

// listPayload returns the "/"-separated paths (prefixed "data/") of the
// regular files under root/data, refusing any other kind of file, and the
// directories it walked.
func listPayload(root string) (files, dirs []string, err error) {
	dataDir := filepath.Join(root, DataDir)
	err = filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dataDir && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Type().IsRegular():
			files = append(files, rel)
		default:
			return invalidf("payload contains a non-regular file: %s", rel)
		}
		return nil
	})
	return files, dirs, err
}

// hashFile returns the size and BLAKE3-256 hex digest of r's bytes, copying
// them to w when w is not nil.
func hashFile(r io.Reader, w io.Writer) (int64, string, error) {
	h := blake3.New(32, nil)
	dst := io.Writer(h)
	if w != nil {
		dst = io.MultiWriter(h, w)
	}
	n, err := io.CopyBuffer(dst, r, make([]byte, 1<<20))
	if err != nil {
		return n, "", err
	}
	return n, fmt.Sprintf("%x", h.Sum(nil)), nil
}
