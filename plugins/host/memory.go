package host

import "github.com/tetratelabs/wazero/experimental"

// linearMemory allocates guests' linear memories. Where the platform allows
// (mapMemory), a memory is a mapping of its maximum size reserved up front:
// the kernel backs its pages only when the guest touches them, growing it
// never copies, and its pages return to the OS when the instance closes. A
// Go guest grows its memory in many small steps, and wazero's default (a Go
// slice grown by append) copies the whole memory at every reallocation:
// about 200 ms of a first 100k-key render, and garbage the size of the
// memory several times over.
var linearMemory = experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
	if m := mapMemory(max); m != nil {
		return m
	}
	return &sliceMemory{buf: make([]byte, 0, capacity)}
})

// sliceMemory is a linear memory in a Go slice, as wazero keeps one by
// default: the fallback when no mapping can be made.
type sliceMemory struct{ buf []byte }

// Reallocate implements [experimental.LinearMemory]; memories only grow.
func (m *sliceMemory) Reallocate(size uint64) []byte {
	if n := uint64(cap(m.buf)); size > n {
		m.buf = append(m.buf[:n], make([]byte, size-n)...)
	}
	m.buf = m.buf[:size]
	return m.buf
}

// Free implements [experimental.LinearMemory].
func (m *sliceMemory) Free() { m.buf = nil }
