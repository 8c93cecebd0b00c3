package transport

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/slipstreamkv/slipstream/snapshot"
)

// pack writes the artifact directory dir to w as a plain tar: its
// directories and regular files, named relative to dir, with fixed modes
// and no owners or times.
func pack(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, Format: tar.FormatPAX})
		case d.Type().IsRegular():
			return packFile(tw, p, name)
		}
		return fmt.Errorf("%w: artifact %s holds a non-regular file: %s", snapshot.ErrArtifactInvalid, dir, name)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func packFile(tw *tar.Writer, p, name string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: fi.Size(), Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// unpack extracts the tar in r into the empty directory dest. It creates
// only directories and regular files (modes 0755 and 0644, times not
// kept) and refuses any entry that would land outside dest, any other
// kind of entry and any file named twice.
func unpack(r io.Reader, dest string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: payload is not a readable tar: %w", snapshot.ErrArtifactInvalid, err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." {
			continue
		}
		if !filepath.IsLocal(filepath.FromSlash(name)) || strings.Contains(name, `\`) {
			return fmt.Errorf("%w: payload entry %q escapes the artifact directory", snapshot.ErrArtifactInvalid, h.Name)
		}
		target := filepath.Join(dest, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			err = unpackFile(tr, target, h.Size)
		default:
			return fmt.Errorf("%w: payload entry %q is not a regular file or a directory", snapshot.ErrArtifactInvalid, h.Name)
		}
		if err != nil {
			return err
		}
	}
}

func unpackFile(r io.Reader, target string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: payload names %s twice", snapshot.ErrArtifactInvalid, target)
	}
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, r, size); err != nil {
		f.Close()
		return fmt.Errorf("%w: payload entry %s is truncated: %w", snapshot.ErrArtifactInvalid, target, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
