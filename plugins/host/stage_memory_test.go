package host

import (
	"fmt"
	"runtime"
	"testing"
)

// TestStagedFileMemory: the host's memory per staged file stays small, so
// the default max_files (a render of millions of files) fits in a host's
// memory. config.go sizes the defaults on this budget, 256 bytes (the
// digest included); before the records were slimmed it was over 300.
func TestStagedFileMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("stages 20,000 files")
	}
	const n = 20_000
	s := newStage(map[string]Output{"out": {Dir: t.TempDir(), Mode: 0o644}}, Limits{}.withDefaults(), false)
	defer s.discard()
	before := heapInUse()
	for i := range n {
		// A fresh string, as the host's copy of the guest's path is.
		p := fmt.Sprintf("d%03d/key-%07d.conf", i/1000, i)
		if _, ref := s.write("out", p, []byte("v"), 0); ref != nil {
			t.Fatal(ref.err)
		}
	}
	perFile := (heapInUse() - before) / n
	t.Logf("%d bytes of host memory per staged file", perFile)
	if perFile > 256 {
		t.Fatalf("%d bytes of host memory per staged file, want at most 256", perFile)
	}
	runtime.KeepAlive(s)
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
