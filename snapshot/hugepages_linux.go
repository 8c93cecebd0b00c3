package snapshot

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePageSize is the size of a transparent huge page on linux/amd64 and
// linux/arm64 with 4 KiB base pages.
const hugePageSize = 2 << 20

// hugePagesFrom is the smallest buffer worth advising: twice a huge page,
// so that it holds at least one whole huge page wherever it starts. Below
// it, a huge page or two would save little and split the heap's mappings
// for nothing.
const hugePagesFrom = 4 << 20

// withHugePages asks the kernel to back s's memory (to its capacity) with
// transparent huge pages and returns s. It is for large buffers filled
// once, before anything touches them (a load's, the fold's arena chunks, a
// merged index): on a virtual machine the first touch of each 4 KiB page
// costs microseconds (tens of them on a busy host), so filling a fresh
// buffer of hundreds of megabytes otherwise takes longer than reading the
// file or fsyncing the batches it came in. With
// THP set to "madvise" (the common default) nothing else would use huge
// pages; with "never" the advice is ignored. Only whole huge pages inside s
// are advised, so no memory beyond s is touched. Errors are ignored: the
// advice is an optimization.
func withHugePages[T any](s []T) []T {
	var zero T
	n := uintptr(cap(s)) * unsafe.Sizeof(zero)
	if n < hugePagesFrom {
		return s
	}
	base := unsafe.Pointer(unsafe.SliceData(s))
	p := uintptr(base)
	start := (p + hugePageSize - 1) &^ (hugePageSize - 1)
	end := (p + n) &^ (hugePageSize - 1)
	if end <= start {
		return s
	}
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(base, start-p)), end-start), unix.MADV_HUGEPAGE)
	return s
}
