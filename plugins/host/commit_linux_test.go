package host

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestStagedFileTheAgentCannotReopenIsSyncedWhenStaged: the commit fsyncs a
// staged file through a new descriptor, which an agent that is not root
// cannot open when the file's mode (0o000 here) locks it out. Such a file
// is fsynced while staged instead, and commits like any other. As root the
// test drops to user nobody for file access (setfsuid, which also drops the
// capability to override permissions) on its own thread.
func TestStagedFileTheAgentCannotReopenIsSyncedWhenStaged(t *testing.T) {
	dir := t.TempDir()
	for d, mode := range map[string]os.FileMode{dir: 0o777, filepath.Dir(dir): 0o711} {
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
	}
	s := newStage(map[string]Output{"out": {Dir: dir}}, Limits{}.withDefaults(), false)
	t.Cleanup(s.discard)
	var rec recorder
	rec.watch(s)

	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if os.Geteuid() == 0 {
			syscall.Setfsuid(65534)
			defer syscall.Setfsuid(0)
		}
		mustStage(t)(s.write("out", "locked", []byte("secret"), 0o000))
		mustStage(t)(s.write("out", "open", []byte("public"), 0o644))
	}()

	if got := []bool{s.byPath[outPath{"out", "locked"}].synced, s.byPath[outPath{"out", "open"}].synced}; !got[0] || got[1] {
		t.Fatalf("fsynced when staged: locked %v, open %v", got[0], got[1])
	}
	if err := s.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	var synced int
	for _, e := range rec.events {
		if strings.HasPrefix(e, "sync ") {
			synced++
		}
	}
	if synced != 1 {
		t.Fatalf("the commit fsynced %d files, want only the one it can open: %v", synced, rec.events)
	}
	for name, want := range map[string]string{"locked": "secret", "open": "public"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v", name, b, err)
		}
	}
}
