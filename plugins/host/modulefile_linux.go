//go:build linux

package host

import (
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// readModule returns the content of the module file at path, mapped
// read-only rather than copied: the pages are the page cache's, so a start
// neither copies megabytes of code nor touches as much fresh memory (on a
// virtual machine each fresh page is a fault and a zeroing, which cost a
// cold start more than the copy). release unmaps it; nothing may read wasm
// after. A file truncated while mapped faults on access: compileModule and
// hashModule turn that into an error. An empty file, or one mmap refuses,
// is read instead.
func readModule(path string) (wasm []byte, release func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if size := fi.Size(); size > 0 && size <= math.MaxInt {
		if b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED); err == nil {
			return b, func() { _ = unix.Munmap(b) }, nil
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return b, func() {}, nil
}
