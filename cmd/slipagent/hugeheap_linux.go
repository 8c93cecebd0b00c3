package main

import (
	"runtime"
	"runtime/debug"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugeHeapBytes is how much of the Go heap adviseHugeHeap maps ahead.
const hugeHeapBytes = 64 << 20

// hugePageBytes is the size of a transparent huge page (x86-64, arm64
// with 4 KiB pages).
const hugePageBytes = 2 << 20

// adviseHugeHeap asks for transparent huge pages on the first 64 MiB of the
// Go heap. An agent's start touches tens of megabytes of fresh heap (the
// plugin module it reads and compiles, the fold of the first sync), one
// page fault per 4 KiB; on a virtual machine a fault can cost tens of
// microseconds, more than the work itself. The Go runtime asks for no huge
// pages on its heap and maps it as it grows, so this maps the first 64 MiB
// now, with one allocation, advises it (the advice stays with the mapping,
// as for plugins' linear memories in plugins/host) and frees it for the
// allocations that follow, in a collection it starts without waiting for
// it (waiting cost 10 to 30 ms of a loaded start). Where the system never
// gives huge pages (/sys/kernel/mm/transparent_hugepage/enabled "never")
// the advice changes nothing; a failure is ignored for the same reason.
func adviseHugeHeap() {
	gc := debug.SetGCPercent(-1) // the allocation below would start a cycle
	b := make([]byte, hugeHeapBytes)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	off := (p+hugePageBytes-1)&^(hugePageBytes-1) - p
	n := (uintptr(len(b)) - off) &^ (hugePageBytes - 1)
	_ = unix.Madvise(b[off:off+n], unix.MADV_HUGEPAGE)
	runtime.KeepAlive(b)
	debug.SetGCPercent(gc)
	go runtime.GC() // frees b's pages for what comes next
}
