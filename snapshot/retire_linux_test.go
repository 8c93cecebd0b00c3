package snapshot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A log file that a load or a compaction replaced is closed off the
// caller's way (its blocks are freed when it is), but by Close at the
// latest: the process keeps no replaced file open.
func TestLogReleasesReplacedFiles(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{CompactThreshold: 1 << 30})
	apply(t, l, cur(1), put("a", "1", 1))
	apply(t, l, cur(2), put("a", "2", 2), put("b", "1", 2))
	l.Close()

	l = openLog(t, p, Options{CompactThreshold: 1 << 30}) // redundant records: the load rewrites the file
	apply(t, l, cur(3), put("a", "3", 3))
	if err := l.Compact(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := openReplaced(t, p); len(got) > 0 {
		t.Fatalf("after Close, the process still holds replaced log files open: %v", got)
	}
	if got := openLog(t, p, Options{}).Len(); got != 2 {
		t.Fatalf("reopened fold has %d keys, want 2", got)
	}
}

// openReplaced lists this process's open files that were the log at path
// and have been replaced (the kernel shows them as "path (deleted)").
func openReplaced(t *testing.T, path string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, path) && strings.HasSuffix(target, " (deleted)") {
			out = append(out, target)
		}
	}
	return out
}
