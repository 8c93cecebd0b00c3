//go:build linux

package host

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// vmaFlags returns the VmFlags of the mapping of this process that holds
// addr (/proc/self/smaps).
func vmaFlags(t *testing.T, addr uintptr) []string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= addr && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.Fields(strings.TrimPrefix(line, "VmFlags:"))
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return nil
}

// A linear memory asks for transparent huge pages past its first
// hugePagesFrom bytes only: a small guest's pages stay 4 KiB (each
// instance took about 2 MiB more with huge pages throughout).
func TestHugePagesOnlyPastTheFirstMegabytes(t *testing.T) {
	m, ok := mapMemory(64 << 20).(*mappedMemory)
	if !ok {
		t.Fatal("no mapped memory")
	}
	defer m.Free()
	advised := func(off int) bool {
		for _, f := range vmaFlags(t, uintptr(unsafe.Pointer(&m.mapping[off]))) {
			if f == "hg" {
				return true
			}
		}
		return false
	}
	if advised(0) || advised(hugePagesFrom-1) {
		t.Error("the first megabytes of a linear memory ask for huge pages")
	}
	if !advised(hugePagesFrom) || !advised(len(m.mapping)-1) {
		t.Error("the memory past them does not ask for huge pages")
	}
}
