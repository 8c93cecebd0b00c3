package main

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"github.com/slipstreamkv/slipstream/internal/smaps"
)

// TestAdviseHugeHeapCoversTheNextAllocations checks that, where the system
// gives huge pages on advice, the heap the agent allocates from after
// adviseHugeHeap is advised (smaps VmFlags "hg"; the Go runtime never
// advises its heap) until undo takes the advice back ("nh"), and that
// elsewhere it advises nothing.
func TestAdviseHugeHeapCoversTheNextAllocations(t *testing.T) {
	if os.Getenv(hugeHeapChildEnv) == "" {
		// In a fresh process, as at the agent's start: in this one, earlier
		// tests' garbage leaves free runs below the advised block that the
		// allocation may take.
		cmd := exec.Command(os.Args[0], "-test.run=^TestAdviseHugeHeapCoversTheNextAllocations$", "-test.count=1")
		cmd.Env = append(os.Environ(), hugeHeapChildEnv+"=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	mode, err := os.ReadFile(thpModeFile)
	onAdvice := err == nil && bytes.Contains(mode, []byte("[madvise]"))
	undo := adviseHugeHeap()
	runtime.GC() // waits for the collection adviseHugeHeap started
	b := make([]byte, 16<<20)
	mid := uintptr(unsafe.Pointer(&b[len(b)/2]))
	flags := vmFlags(t, mid)
	if !onAdvice {
		if undo != nil || slices.Contains(flags, "hg") {
			t.Fatalf("transparent huge pages %q: adviseHugeHeap advised the heap (VmFlags %v)", mode, flags)
		}
		return
	}
	if undo == nil || !slices.Contains(flags, "hg") {
		t.Fatalf("a 16 MiB allocation after adviseHugeHeap lies in a mapping without huge page advice (VmFlags %v)", flags)
	}
	undo()
	if flags := vmFlags(t, mid); slices.Contains(flags, "hg") || !slices.Contains(flags, "nh") {
		t.Fatalf("undo left the advice (VmFlags %v)", flags)
	}
	runtime.KeepAlive(b)
}

// hugeHeapChildEnv marks the child process in which
// TestAdviseHugeHeapCoversTheNextAllocations checks.
const hugeHeapChildEnv = "SLIPAGENT_TEST_HUGEHEAP_CHILD"

// vmFlags returns the VmFlags of the mapping holding addr.
func vmFlags(t *testing.T, addr uintptr) []string {
	t.Helper()
	flags, err := smaps.VMFlags(addr)
	if err != nil {
		t.Fatal(err)
	}
	return flags
}
