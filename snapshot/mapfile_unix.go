//go:build unix

package snapshot

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps n bytes of f from off (a multiple of the page size)
// read-only and shared: reads see what is written to f, through its page
// cache.
func mapFile(f *os.File, off int64, n int) (data []byte, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	if cerr := rc.Control(func(fd uintptr) {
		data, err = unix.Mmap(int(fd), off, n, unix.PROT_READ, unix.MAP_SHARED)
	}); cerr != nil {
		return nil, cerr
	}
	return data, err
}

// unmapFile undoes mapFile.
func unmapFile(data []byte) error { return unix.Munmap(data) }
