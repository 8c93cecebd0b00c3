package snapshot

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePageSize is the size of a transparent huge page on linux/amd64 and
// linux/arm64 with 4 KiB base pages.
const hugePageSize = 2 << 20

// hugePagesFrom is the smallest buffer worth preparing: twice a huge page,
// so that it holds at least one whole huge page wherever it starts. Below
// it, a huge page or two would save little and split the heap's mappings
// for nothing.
const hugePagesFrom = 4 << 20

// prefaulted prepares s's memory (to its capacity) for being filled at
// once and returns s. It is for large buffers filled once, before anything
// touches them (a compaction's image, the fold's arena chunks, a merged
// index): on a virtual machine the first touch of each 4 KiB page costs
// microseconds (tens of them on a busy host), so filling a fresh buffer of
// hundreds of megabytes by touching its pages takes longer than reading
// the file or fsyncing the batches it came in. It asks the kernel
//
//   - to back the buffer with transparent huge pages (with THP set to
//     "madvise", the common default, nothing else would use them; with
//     "never" the advice is ignored), and
//   - to map every page of it now, in one call (MADV_POPULATE_WRITE, Linux
//     5.14): 256 MiB in 40 ms on this project's VMs, where touching them
//     one by one takes 500-750 ms. An older kernel refuses it, and the
//     pages are mapped as they are filled.
//
// Only whole pages inside s are advised, so no memory beyond s is touched.
// Errors are ignored: the advice is an optimization.
//
// A buffer a reader fills as another goroutine consumes it (a load's
// image) takes withHugePages alone: mapping gigabytes up front would delay
// its first bytes by as long.
func prefaulted[T any](s []T) []T {
	base, n, ok := span(withHugePages(s))
	if !ok {
		return s
	}
	if mem, ok := inner(base, n, pageSize); ok {
		_ = unix.Madvise(mem, unix.MADV_POPULATE_WRITE)
	}
	return s
}

// withHugePages asks the kernel to back s's memory (to its capacity) with
// transparent huge pages, as prefaulted does, without mapping it now.
func withHugePages[T any](s []T) []T {
	if base, n, ok := span(s); ok {
		if mem, ok := inner(base, n, hugePageSize); ok {
			_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
		}
	}
	return s
}

// span is the memory of s to its capacity, if it is worth advising.
func span[T any](s []T) (unsafe.Pointer, uintptr, bool) {
	var zero T
	n := uintptr(cap(s)) * unsafe.Sizeof(zero)
	return unsafe.Pointer(unsafe.SliceData(s)), n, n >= hugePagesFrom
}

// inner returns the whole align-sized blocks of the n bytes at base.
func inner(base unsafe.Pointer, n, align uintptr) ([]byte, bool) {
	p := uintptr(base)
	start := (p + align - 1) &^ (align - 1)
	end := (p + n) &^ (align - 1)
	if end <= start {
		return nil, false
	}
	return unsafe.Slice((*byte)(unsafe.Add(base, start-p)), end-start), true
}

// populate maps the whole pages of b, part of a file mapping whose bytes
// are in the page cache, in one call (MADV_POPULATE_READ, Linux 5.14)
// rather than a fault at a time as they are read (BenchmarkApply and
// BenchmarkApplySync: about 5% less time and CPU, 4 interleaved runs).
// Errors are ignored: the advice is an optimization.
func populate(b []byte) {
	if mem, ok := inner(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)), pageSize); ok {
		_ = unix.Madvise(mem, unix.MADV_POPULATE_READ)
	}
}
