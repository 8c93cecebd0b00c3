package snapshot

import (
	"errors"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A prefaulted buffer has every page mapped before anything touches it.
func TestPrefaultedMapsEveryPage(t *testing.T) {
	probe := make([]byte, 2*pageSize)
	if mem, ok := inner(unsafe.Pointer(unsafe.SliceData(probe)), uintptr(len(probe)), pageSize); ok {
		if err := unix.Madvise(mem, unix.MADV_POPULATE_WRITE); errors.Is(err, unix.EINVAL) {
			t.Skip("this kernel has no MADV_POPULATE_WRITE (Linux 5.14); prefaulted leaves pages to their first touch")
		}
	}
	buf := prefaulted(make([]byte, 0, 16<<20))
	mem, ok := inner(unsafe.Pointer(unsafe.SliceData(buf)), uintptr(cap(buf)), pageSize)
	if !ok {
		t.Fatal("no whole page in a 16 MiB buffer")
	}
	resident := make([]byte, len(mem)/pageSize)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(mem))), uintptr(len(mem)), uintptr(unsafe.Pointer(unsafe.SliceData(resident)))); errno != 0 {
		t.Fatal(errno)
	}
	missing := 0
	for _, r := range resident {
		if r&1 == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d pages of a prefaulted buffer are not mapped", missing, len(resident))
	}
}
