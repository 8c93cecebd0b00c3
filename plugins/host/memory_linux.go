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
	// Past the first hugePagesFrom bytes only: a guest of a few MiB (most
	// watches') would take 2 MiB wherever it touched a page, about 2 MiB
	// more per instance (an agent of 60 watches: 505 MB resident instead of
	// 397), for no gain. Advice only: its failure changes nothing.
	if huge := hugePageRange(b); huge != nil {
		_ = unix.Madvise(huge, unix.MADV_HUGEPAGE)
	}
	return &mappedMemory{mapping: b}
}

// hugePagesFrom is where in a linear memory transparent huge pages start.
const hugePagesFrom = 8 << 20

// hugePageRange is the part of the mapping b that asks for huge pages (nil:
// none).
func hugePageRange(b []byte) []byte {
	if len(b) <= hugePagesFrom {
		return nil
	}
	return b[hugePagesFrom:]
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
