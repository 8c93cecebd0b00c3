//go:build unix

package artifact

import "syscall"

// Flags for opening artifact files: never follow a symlink where a regular
// file is expected, and never block opening a FIFO (it is then refused as
// a non-regular file).
const (
	openNoFollow = syscall.O_NOFOLLOW
	openNonBlock = syscall.O_NONBLOCK
)
