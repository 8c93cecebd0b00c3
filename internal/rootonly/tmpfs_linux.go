package rootonly

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of size bytes, mode 0755, on the directory dir for
// the rest of the test: a small file system to fill up. It needs root (see
// [Require]) with CAP_SYS_ADMIN.
func Tmpfs(tb testing.TB, dir string, size int64) {
	tb.Helper()
	Require(tb, "mounting a tmpfs")
	err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size))
	if errors.Is(err, syscall.EPERM) && os.Getenv(RequireEnv) != "1" {
		// Root without CAP_SYS_ADMIN, as in a default container.
		tb.Skipf("mounting a tmpfs on %s: %v (%s=1 makes this a failure)", dir, err, RequireEnv)
	}
	if err != nil {
		tb.Fatalf("mounting a tmpfs on %s: %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmounting %s: %v", dir, err)
		}
	})
}
