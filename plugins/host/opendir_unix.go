//go:build unix

package host

import (
	"os"
	"syscall"
)

// openDirFlags opens a directory to list it. O_DIRECTORY makes opening
// anything else fail at once: without it, opening a FIFO blocks until a
// writer comes, inside a host call that no timeout can interrupt.
// O_NONBLOCK covers a device that would block as well.
const openDirFlags = os.O_RDONLY | syscall.O_DIRECTORY | syscall.O_NONBLOCK
