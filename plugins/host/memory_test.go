package host

import (
	"runtime"
	"testing"
	"unsafe"
)

// TestLinearMemoryGrowsInPlace grows a memory from the allocator the host
// gives wazero: contents survive every growth, a mapped memory never moves,
// and growth past the maximum fails instead of allocating (on Linux).
func TestLinearMemoryGrowsInPlace(t *testing.T) {
	const page = 64 << 10
	for name, m := range map[string]interface {
		Reallocate(uint64) []byte
		Free()
	}{
		"allocator": linearMemory.Allocate(page, 64*page),
		"slice":     &sliceMemory{buf: make([]byte, 0, page)},
	} {
		t.Run(name, func(t *testing.T) {
			defer m.Free()
			b := m.Reallocate(page)
			first := unsafe.SliceData(b)
			b[0], b[page-1] = 1, 2
			for size := uint64(2 * page); size <= 64*page; size += 3 * page {
				b = m.Reallocate(size)
				if uint64(len(b)) != size || b[0] != 1 || b[page-1] != 2 || b[size-1] != 0 {
					t.Fatalf("grown to %d: len %d, contents %d %d %d", size, len(b), b[0], b[page-1], b[size-1])
				}
			}
			if name == "allocator" && runtime.GOOS == "linux" {
				if unsafe.SliceData(b) != first {
					t.Fatal("a mapped memory moved")
				}
				if m.Reallocate(65*page) != nil {
					t.Fatal("a mapped memory grew past its maximum")
				}
			}
		})
	}
}
