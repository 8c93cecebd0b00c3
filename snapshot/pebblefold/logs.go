package pebblefold

import (
	"log/slog"
	"os"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// walCategory is the category Pebble creates its write-ahead logs under.
const walCategory vfs.DiskWriteCategory = "pebble-wal"

// logReserveStep is how far ahead of its end a write-ahead log reserves
// disk (see steppedLogs).
const logReserveStep = 4 << 20

// steppedLogs wraps a fold's file system so that Pebble's
// write-ahead logs take about the disk they are written with. Pebble
// preallocates every log at 110% of the largest memtable (70 MiB at the
// default 64 MiB), however small the memtable it logs (they start at
// 256 KiB and double), and keeps up to five logs for reuse: a fold written
// a few megabytes held six to eight such logs, 420 to 560 MiB of its file
// system, for good. A log here reserves logReserveStep at a time ahead of
// its writes instead, so that most appends need no new disk (Pebble takes
// a failed log write for fatal): the free space the fold keeps
// (reserveBytes), checked before every write, has to last only until the
// next step. A reservation that fails is ignored, as Pebble ignores its
// own.
func steppedLogs(fs vfs.FS) vfs.FS { return logsFS{fs} }

type logsFS struct{ vfs.FS }

// Unwrap returns the file system logsFS wraps.
func (fs logsFS) Unwrap() vfs.FS { return fs.FS }

func (fs logsFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return steppedLog(f, category), err
}

func (fs logsFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return steppedLog(f, category), err
}

// steppedLog returns f, a write-ahead log's reserving disk logReserveStep
// at a time.
func steppedLog(f vfs.File, category vfs.DiskWriteCategory) vfs.File {
	if f == nil || category != walCategory {
		return f
	}
	return &logFile{File: f}
}

// logFile is a write-ahead log that reserves disk ahead of its writes a
// step at a time. Pebble writes a log from one goroutine, from its start
// (a reused log is overwritten).
type logFile struct {
	vfs.File
	written, reserved int64
}

func (f *logFile) Write(p []byte) (int, error) {
	if end := f.written + int64(len(p)); end > f.reserved {
		next := (end + logReserveStep - 1) / logReserveStep * logReserveStep
		_ = f.File.Preallocate(f.reserved, next-f.reserved) // a hint, as Pebble's own
		f.reserved = next
	}
	n, err := f.File.Write(p)
	f.written += int64(n)
	return n, err
}

// Preallocate ignores Pebble's reservation of 110% of the largest memtable.
func (*logFile) Preallocate(offset, length int64) error { return nil }

// trimLogs frees what a preallocation reserved past the end of the
// write-ahead logs in dir (70 MiB a log, by a slipagent before
// steppedLogs), before Pebble opens them: truncating a file to its
// size keeps its content, and frees the blocks past its end on ext4, XFS
// and tmpfs. It is best effort: a log it cannot trim keeps its
// reservation.
func trimLogs(fsys vfs.FS, dir string, log *slog.Logger) {
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
		fi, err := os.Lstat(path)
		if err == nil && fi.Mode().IsRegular() {
			err = os.Truncate(path, fi.Size())
		}
		if err != nil {
			log.Debug("cannot free the disk reserved past the end of a write-ahead log", "path", path, "err", err)
		}
	}
}
