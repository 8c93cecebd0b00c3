package snapshot

import (
	"errors"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A prefaulted buffer has every page mapped before anything touches it.
// The buffer is a fresh anonymous mapping: a heap allocation may reuse
// memory an earlier test touched.
func TestPrefaultedMapsEveryPage(t *testing.T) {
	const size = 16 << 20
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if missing := unmapped(t, mem); missing != len(mem)/int(pageSize) {
		t.Fatalf("%d pages of a fresh mapping are mapped already", len(mem)/int(pageSize)-missing)
	}
	if err := unix.Madvise(mem[:pageSize], unix.MADV_POPULATE_WRITE); errors.Is(err, unix.EINVAL) {
		t.Skip("this kernel has no MADV_POPULATE_WRITE (Linux 5.14); prefaulted leaves pages to their first touch")
	}
	prefaulted(mem[:0])
	if missing := unmapped(t, mem); missing > 0 {
		t.Fatalf("%d of %d pages of a prefaulted buffer are not mapped", missing, len(mem)/int(pageSize))
	}
}

// unmapped is how many pages of mem are not mapped (mincore).
func unmapped(t *testing.T, mem []byte) int {
	t.Helper()
	resident := make([]byte, len(mem)/int(pageSize))
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(mem))), uintptr(len(mem)), uintptr(unsafe.Pointer(unsafe.SliceData(resident)))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, r := range resident {
		if r&1 == 0 {
			n++
		}
	}
	return n
}
