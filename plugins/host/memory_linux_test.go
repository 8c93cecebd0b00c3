//go:build linux

package host

import (
	"os"
	"slices"
	"testing"
	"unsafe"

	"github.com/slipstreamkv/slipstream/internal/smaps"
)

// A linear memory asks for transparent huge pages past its first
// hugePagesFrom bytes only: a small guest's pages stay 4 KiB (each
// instance took about 2 MiB more with huge pages throughout).
func TestHugePagesOnlyPastTheFirstMegabytes(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skipf("no transparent huge pages to advise: %v", err)
	}
	m, ok := mapMemory(64 << 20).(*mappedMemory)
	if !ok {
		t.Fatal("no mapped memory")
	}
	defer m.Free()
	advised := func(off int) bool {
		flags, err := smaps.VMFlags(uintptr(unsafe.Pointer(&m.mapping[off])))
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(flags, "hg")
	}
	if advised(0) || advised(hugePagesFrom-1) {
		t.Error("the first megabytes of a linear memory ask for huge pages")
	}
	if !advised(hugePagesFrom) || !advised(len(m.mapping)-1) {
		t.Error("the memory past them does not ask for huge pages")
	}
}
