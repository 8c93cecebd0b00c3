package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/slipstreamkv/slipstream/snapshot"
)

// snapshotExport writes an artifact of the fold file at path into dir. It
// reads a copy of the file, so an agent may have the fold open meanwhile:
// the log is append-only and compaction replaces the file by a rename, so
// the copy holds a prefix of the fold's history (a torn tail is dropped as
// loading drops it), the fold at some cursor it has passed.
func snapshotExport(ctx context.Context, path, dir string, stdout, stderr io.Writer) int {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		fmt.Fprintf(stderr, "slipagent snapshot export: %s is a directory, not a fold file: disk folds (fold = \"disk\") cannot be exported, only append-log folds (fold = \"memory\")\n", path)
		return exitFailure
	}
	tmp, err := os.MkdirTemp("", "slipagent-export-")
	if err != nil {
		fmt.Fprintf(stderr, "slipagent snapshot export: %v\n", err)
		return exitFailure
	}
	defer os.RemoveAll(tmp)
	copied := filepath.Join(tmp, "fold.snap")
	if err := copyFile(path, copied); err != nil {
		fmt.Fprintf(stderr, "slipagent snapshot export: %v\n", err)
		return exitFailure
	}
	l, err := snapshot.Open(copied, snapshot.Options{})
	if err != nil {
		// A refused file is named by its path: the user's, not the copy's.
		if fe := (*snapshot.FormatError)(nil); errors.As(err, &fe) && fe.Path == copied {
			fe.Path = path
		} else {
			err = fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(stderr, "slipagent snapshot export: %v\n", err)
		return exitFailure
	}
	defer l.Close()
	cursor, err := l.Export(ctx, dir)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent snapshot export: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "exported %s to %s: %s\n", path, dir, keysAt(l.Len(), cursor))
	return exitOK
}

// snapshotImport verifies the artifact in dir and makes it the fold file at
// path, which must not exist.
func snapshotImport(dir, path string, stdout, stderr io.Writer) int {
	l, err := snapshot.Import(dir, path, snapshot.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "slipagent snapshot import: %v\n", err)
		return exitFailure
	}
	defer l.Close()
	fmt.Fprintf(stdout, "imported %s to %s: %s\n", dir, path, keysAt(l.Len(), l.Cursor()))
	return exitOK
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
