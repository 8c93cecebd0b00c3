package main

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugeHeapBytes is how much of the Go heap adviseHugeHeap maps ahead.
const hugeHeapBytes = 64 << 20

// hugePageBytes is the size of a transparent huge page (x86-64, arm64
// with 4 KiB pages).
const hugePageBytes = 2 << 20

// hugeHeapFor is how long the start keeps its huge page advice.
const hugeHeapFor = 10 * time.Second

// thpModeFile says when the system gives transparent huge pages.
const thpModeFile = "/sys/kernel/mm/transparent_hugepage/enabled"

// adviseHugeHeapAtStart advises transparent huge pages on the first 64 MiB
// of the Go heap (adviseHugeHeap) for the start of the process,
// hugeHeapFor: past it the heap gets 4 KiB pages again, so that
// khugepaged, which fills an advised range it finds partly used, does not
// grow an agent at rest.
func adviseHugeHeapAtStart() {
	if undo := adviseHugeHeap(); undo != nil {
		time.AfterFunc(hugeHeapFor, undo)
	}
}

// adviseHugeHeap asks for transparent huge pages on the first 64 MiB of the
// Go heap and returns the function that takes the advice back, or nil when
// it gave none. An agent's start touches tens of megabytes of fresh heap
// (the plugin module it reads and compiles, the fold of the first sync),
// one page fault per 4 KiB; on a virtual machine a fault can cost tens of
// microseconds, more than the work itself. The Go runtime asks for no huge
// pages on its heap and maps it as it grows, so this maps the first 64 MiB
// now, with one allocation, advises it (the advice stays with the mapping,
// as for plugins' linear memories in plugins/host) and frees it for the
// allocations that follow, in a collection it starts without waiting for
// it (waiting cost 10 to 30 ms of a loaded start). It does so only where
// the system gives huge pages on advice ("madvise" in thpModeFile): with
// "always" they come anyway, with "never" not at all.
func adviseHugeHeap() (undo func()) {
	if mode, err := os.ReadFile(thpModeFile); err != nil || !bytes.Contains(mode, []byte("[madvise]")) {
		return nil
	}
	gc := debug.SetGCPercent(-1) // the allocation below would start a cycle
	defer debug.SetGCPercent(gc)
	b := make([]byte, hugeHeapBytes)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	off := (p+hugePageBytes-1)&^(hugePageBytes-1) - p
	n := (uintptr(len(b)) - off) &^ (hugePageBytes - 1)
	if unix.Madvise(b[off:off+n], unix.MADV_HUGEPAGE) != nil {
		return nil
	}
	runtime.KeepAlive(b)
	go runtime.GC() // frees b's pages for what comes next
	// The address, not b: holding b would keep its pages from the heap.
	start := p + off
	return func() { _, _, _ = unix.Syscall(unix.SYS_MADVISE, start, n, unix.MADV_NOHUGEPAGE) }
}
