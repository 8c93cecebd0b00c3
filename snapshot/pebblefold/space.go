package pebblefold

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// reserveBytes is the free space a fold opened with opts (defaults set)
// leaves on its file system: Pebble treats a failed write of its log or
// manifest as fatal (it panics, taking the whole process with it), and a
// flush that finds the disk full retries at once, for ever. A write that
// would leave less free fails with [syscall.ENOSPC] before Pebble sees it,
// and the fold stays usable once space is freed. It covers the flush of a
// full memtable and the log and manifest records around it (a write's own
// record in Pebble's write-ahead log, reserved only a step ahead, is
// checked with it: see steppedLogs), and never less than a fold of the
// default size needs: a fold of small memtables beside one of the default
// (the agent's record of its outputs beside its fold) must not take the
// other's headroom.
func reserveBytes(opts Options) int64 { return max(opts.MemTableSize, memTableSize) + 8<<20 }

// checkSpace fails with syscall.ENOSPC when fewer than need bytes are free
// on the file system of dir (the caller's error names dir) (or of its parent, when dir is not created
// yet). A file system that cannot tell (an in-memory one) passes.
func checkSpace(vfsys vfs.FS, dir string, need int64) error {
	u, err := vfsys.GetDiskUsage(dir)
	if errors.Is(err, fs.ErrNotExist) {
		u, err = vfsys.GetDiskUsage(vfsys.PathDir(dir))
	}
	if err != nil || u.AvailBytes >= uint64(need) {
		return nil
	}
	return fmt.Errorf("%.1f MiB free on the file system, under the %.1f MiB a disk fold needs to write without filling it (Pebble cannot recover from a full disk in its log): %w",
		float64(u.AvailBytes)/(1<<20), float64(need)/(1<<20), syscall.ENOSPC)
}

// logBytes is the size of the write-ahead logs in dir, which Open replays
// and flushes into tables (recycled logs count too: an overestimate).
func logBytes(vfsys vfs.FS, dir string) int64 {
	names, err := vfsys.List(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, name := range names {
		if !strings.HasSuffix(name, ".log") {
			continue
		}
		if st, err := vfsys.Stat(vfsys.PathJoin(dir, name)); err == nil {
			n += st.Size()
		}
	}
	return n
}
