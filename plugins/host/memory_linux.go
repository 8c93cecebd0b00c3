//go:build linux

package host

import (
	"math"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// mappedMemory is a linear memory in a private anonymous mapping of its
// maximum size, made without reserving swap (MAP_NORESERVE): only the pages
// the guest touches count.
type mappedMemory struct{ mapping []byte }

// mapMemory maps a memory of at most max bytes, or returns nil.
func mapMemory(max uint64) experimental.LinearMemory {
	if max == 0 || max > math.MaxInt {
		return nil
	}
	b, err := unix.Mmap(-1, 0, int(max), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	// Transparent huge pages where the system offers them on request
	// (/sys/kernel/mm/transparent_hugepage/enabled "madvise"): a guest
	// touching fresh memory then faults every 2 MiB rather than every 4 KiB,
	// which was half the first render of 100,000 keys by a fresh instance
	// (BenchmarkTemplateRender100k/first in plugins/examples/template).
	// Advice only: its failure changes nothing.
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	return &mappedMemory{mapping: b}
}

// Reallocate implements [experimental.LinearMemory]: the memory's first size
// bytes, at the same address; nil past the mapping.
func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.mapping)) {
		return nil
	}
	return m.mapping[:size:size]
}

// Free implements [experimental.LinearMemory].
func (m *mappedMemory) Free() {
	if m.mapping != nil {
		_ = unix.Munmap(m.mapping)
		m.mapping = nil
	}
}
