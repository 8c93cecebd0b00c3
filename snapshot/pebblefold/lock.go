package pebblefold

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstreamkv/slipstream/snapshot"
)

// lockDir takes Pebble's lock on the fold in dir, refusing a directory
// that holds files but no Pebble store: Pebble would make its files among
// them. A fold held open (by this process or another) is refused with an
// error wrapping [snapshot.ErrLocked], as a held log is.
func lockDir(fsys vfs.FS, dir string, readOnly bool) (*pebble.Lock, error) {
	if !readOnly {
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	if err := checkFoldDir(fsys, dir); err != nil {
		return nil, err
	}
	lock, err := pebble.LockDirectory(dir, fsys)
	if heldLock(err) {
		return nil, fmt.Errorf("%w: the fold in %s is open in another Fold or process (it holds %s)", snapshot.ErrLocked, dir, fsys.PathJoin(dir, "LOCK"))
	}
	return lock, err
}

// heldLock reports whether err is Pebble's refusal of a lock held by this
// process, or fcntl's of one held by another (a failure to open the lock
// file is a *fs.PathError instead).
func heldLock(err error) bool {
	if err == nil {
		return false
	}
	if err.Error() == "lock held by current process" {
		return true
	}
	var pe *fs.PathError
	return !errors.As(err, &pe) && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES))
}

// checkFoldDir refuses a directory with entries of which none is Pebble's
// (its LOCK, OPTIONS, MANIFEST or marker files) or the fold's own; a file
// system's lost+found does not count. One that holds Pebble's tables or
// logs without those files is a fold that lost them: an error wrapping
// [snapshot.ErrCorrupted].
func checkFoldDir(fsys vfs.FS, dir string) error {
	names, err := fsys.List(dir)
	if err != nil {
		return nil // Pebble reports a directory it cannot read
	}
	var foreign, data string
	for _, n := range names {
		switch {
		case n == "LOCK", n == ingestDir, strings.HasPrefix(n, "OPTIONS-"), strings.HasPrefix(n, "MANIFEST-"), strings.HasPrefix(n, "marker."):
			return nil
		case pebbleDataFile.MatchString(n):
			data = n
		case n != "lost+found" && foreign == "":
			foreign = n
		}
	}
	switch {
	case data != "":
		return fmt.Errorf("%w: %s holds Pebble's %s but no manifest", snapshot.ErrCorrupted, dir, data)
	case foreign != "":
		return fmt.Errorf("%s holds other files (%s) and no fold: give the fold a directory of its own", dir, foreign)
	}
	return nil
}

// pebbleDataFile matches the names of Pebble's tables, logs and blob files.
var pebbleDataFile = regexp.MustCompile(`^[0-9]+\.(sst|log|blob)$`)
