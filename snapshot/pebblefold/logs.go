package pebblefold

import (
	"os"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// walCategory is the category Pebble creates its write-ahead logs under.
const walCategory vfs.DiskWriteCategory = "pebble-wal"

// unpreallocatedLogs wraps a fold's file system so that Pebble's
// write-ahead logs take the disk they are written with, no more. Pebble
// preallocates every log at 110% of the largest memtable (70 MiB at the
// default 64 MiB), however small the memtable it logs (they start at
// 256 KiB and double), and keeps up to five logs for reuse: a fold written
// a few megabytes held six to eight such logs, 420 to 560 MiB of its file
// system, for good. The preallocation is only a hint (Pebble ignores its
// failure), and the free space the fold keeps (reserveBytes), checked
// before every write, covers a log's growth.
func unpreallocatedLogs(fs vfs.FS) vfs.FS { return logsFS{fs} }

type logsFS struct{ vfs.FS }

// Unwrap returns the file system logsFS wraps.
func (fs logsFS) Unwrap() vfs.FS { return fs.FS }

func (fs logsFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return unpreallocated(f, category), err
}

func (fs logsFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return unpreallocated(f, category), err
}

// unpreallocated returns f, a write-ahead log's without its preallocation.
func unpreallocated(f vfs.File, category vfs.DiskWriteCategory) vfs.File {
	if f == nil || category != walCategory {
		return f
	}
	return logFile{f}
}

// logFile is a write-ahead log that is not preallocated.
type logFile struct{ vfs.File }

func (logFile) Preallocate(offset, length int64) error { return nil }

// trimLogs frees what a preallocation reserved past the end of the
// write-ahead logs in dir (70 MiB a log, by a slipagent before
// unpreallocatedLogs), before Pebble opens them: truncating a file to its
// size keeps its content. It is best effort: a log it cannot trim only
// keeps its reservation.
func trimLogs(fsys vfs.FS, dir string) {
	if fsys != vfs.Default {
		return // another file system reserves nothing
	}
	names, err := fsys.List(dir)
	if err != nil {
		return
	}
	for _, name := range names {
		if !strings.HasSuffix(name, ".log") {
			continue
		}
		path := fsys.PathJoin(dir, name)
		if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
			_ = os.Truncate(path, fi.Size())
		}
	}
}
