// Package filelock takes advisory, exclusive, non-blocking locks on open
// files (flock(2)). A lock belongs to the open file description: a second
// open of the same file conflicts with it even in the same process, and it
// is released when the file is closed or the process exits, so a crash
// never leaves a stale lock behind.
package filelock

import (
	"errors"
	"os"
)

// ErrHeld is returned by [TryLock] when another open file description
// holds the lock.
var ErrHeld = errors.New("filelock: held by another open file")

// TryLock takes an exclusive lock on f without waiting. Closing f releases
// it. It returns an error wrapping [ErrHeld] when the lock is taken, and one
// wrapping [errors.ErrUnsupported] on systems without flock.
func TryLock(f *os.File) error { return tryLock(f) }

// Create opens the lock file at path, creating it with perm if missing (a
// symlink there is refused where the system can tell), and takes its lock
// as TryLock does. The lock is held until the returned file is closed; on
// an error the file is closed already.
func Create(path string, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|noFollow, perm)
	if err != nil {
		return nil, err
	}
	if err := TryLock(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
