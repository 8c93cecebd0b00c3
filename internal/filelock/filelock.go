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
