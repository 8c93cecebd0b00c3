package host

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// CopyTree copies the directory src to dst (which must not exist): its
// directories, regular files with their modes, and symlinks as symlinks. A
// missing src copies nothing. It gives a dry run (slipagent plan, plugin run
// -diff) a scratch copy of an output to stage into, so that nothing of the
// output itself changes.
func CopyTree(src, dst string) error {
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(to, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, to)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, data, info.Mode().Perm())
		}
		return nil // devices, sockets and pipes are not plugin outputs
	})
}
