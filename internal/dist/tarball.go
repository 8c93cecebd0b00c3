package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/goreleaser/nfpm/v2/files"
)

// writeTarball writes the contents as a gzipped tar below one top
// directory named like the tarball, at the paths the packages install them
// to: `tar -xzf X.tar.gz --strip-components=1 --keep-directory-symlink -C /` installs as a package
// would (but overwrites /etc/slipagent/agent.hcl).
func writeTarball(file string, c files.Contents) (err error) {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	top := strings.TrimSuffix(path.Base(file), ".tar.gz")
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	dirs := map[string]bool{}
	for _, e := range c {
		name := path.Join(top, strings.TrimPrefix(e.Destination, "/"))
		if err := addParents(tw, dirs, name, e.Type == files.TypeDir); err != nil {
			return fmt.Errorf("tarball %s: %w", file, err)
		}
		if e.Type == files.TypeDir {
			continue
		}
		if err := addFile(tw, name, e); err != nil {
			return fmt.Errorf("tarball %s: %w", file, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// addParents adds the directories above name (and name itself, when it is
// a directory) that the tarball does not hold yet.
func addParents(tw *tar.Writer, dirs map[string]bool, name string, isDir bool) error {
	dir := path.Dir(name)
	if isDir {
		dir = name
	}
	var missing []string
	for d := dir; d != "." && !dirs[d]; d = path.Dir(d) {
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		dirs[missing[i]] = true
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: missing[i] + "/", Mode: 0o755}); err != nil {
			return err
		}
	}
	return nil
}

func addFile(tw *tar.Writer, name string, e *files.Content) error {
	src, err := os.Open(e.Source)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: int64(e.FileInfo.Mode), Size: st.Size(), ModTime: st.ModTime()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, src)
	return err
}
