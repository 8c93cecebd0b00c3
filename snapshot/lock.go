package snapshot

import (
	"errors"
	"fmt"
	"os"

	"github.com/slipstreamkv/slipstream/internal/filelock"
)

// lockSuffix names a log's lock file: "fold.snap.lock" beside "fold.snap".
//
// The lock is an exclusive flock(2) on that sidecar file, not on the log: the
// log's inode changes at every compaction (a new file is renamed over it),
// so a lock on the log would have to be re-taken on each new file before
// its rename, and an opener that opened the old inode just before a rename
// could lock it after the owner closed it and believe it owned the log. The
// sidecar's inode never changes. It is never removed (removing it would let
// two openers lock two different inodes), it holds no data, and the log
// itself stays byte-for-byte the Rust crate's format. This is how Pebble,
// LevelDB and RocksDB lock their directories (a LOCK file).
const lockSuffix = ".lock"

// lockLog takes the writer's lock of the log at path without waiting. The
// lock is held until the returned file is closed (or the process exits). If
// another Log, Writer or Repair holds it, in this process or another, the
// error wraps [ErrLocked].
func lockLog(path string) (*os.File, error) {
	if path == "" {
		// Not the working directory's ".lock": a caller's empty setting.
		return nil, errors.New("snapshot: no log path (it is empty)")
	}
	f, err := filelock.Create(path+lockSuffix, 0o644)
	switch {
	case errors.Is(err, filelock.ErrHeld):
		return nil, fmt.Errorf("%w: %s is open for writing by another Log, Writer or repair (it holds %s)", ErrLocked, path, path+lockSuffix)
	case err != nil:
		return nil, fmt.Errorf("snapshot: lock %s: %w", path, err)
	}
	return f, nil
}
