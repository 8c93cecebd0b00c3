package pebblefold

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// logsAllocated is the disk the write-ahead logs in dir take, and their
// size.
func logsAllocated(t *testing.T, dir string) (logs int, allocated, size int64) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range paths {
		fi, err := os.Stat(l)
		if err != nil {
			t.Fatal(err)
		}
		allocated += fi.Sys().(*syscall.Stat_t).Blocks * 512
		size += fi.Size()
	}
	return len(paths), allocated, size
}

// A fold's write-ahead logs take the disk they are written with: Pebble
// preallocated each at 70 MiB (110% of the largest memtable), and a fold
// written 2 MiB, its memtables rotating at 256 KiB, 512 KiB and 1 MiB,
// held four such logs, 280 MiB of its file system, where 2 MiB were
// written.
func TestLogsTakeTheDiskTheyAreWrittenWith(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	value := bytes.Repeat([]byte("v"), 4000)
	const writes = 512 // about 2 MiB
	for rev := uint64(1); rev <= writes; rev++ {
		u := kvcore.Update{Op: kvcore.OpPut, Key: fmt.Sprintf("k%03d", rev%100), Value: value, Version: kvcore.RevisionVersion(rev)}
		if err := f.Apply(context.Background(), []kvcore.Update{u}, kvcore.RevisionCursor(rev)); err != nil {
			t.Fatal(err)
		}
	}
	logs, allocated, _ := logsAllocated(t, dir)
	if logs < 2 {
		t.Fatalf("%d logs: the memtable did not rotate", logs)
	}
	if allocated > 8<<20 {
		t.Errorf("%d logs take %.1f MiB of the file system for 2 MiB written", logs, float64(allocated)/(1<<20))
	}
}

// The logs an older slipagent preallocated (70 MiB each, past their end)
// give that disk back when the fold opens: Pebble deletes the logs it
// replays, but keeps the ones it may reuse, with their reservation.
func TestOpenTrimsPreallocatedLogs(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("v"), 4000)
	for rev := uint64(1); rev <= 4096; rev++ { // 16 MiB: logs rotated and kept for reuse
		u := kvcore.Update{Op: kvcore.OpPut, Key: fmt.Sprintf("k%03d", rev%100), Value: value, Version: kvcore.RevisionVersion(rev)}
		if err := f.Apply(context.Background(), []kvcore.Update{u}, kvcore.RevisionCursor(rev)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, p := range paths {
		lf, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = unix.Fallocate(int(lf.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, 70<<20)
		lf.Close()
		if err != nil {
			t.Skipf("the file system cannot preallocate: %v", err)
		}
	}
	if logs, allocated, _ := logsAllocated(t, dir); logs == 0 || allocated < 70<<20 {
		t.Fatalf("%d logs take %d bytes: not preallocated", logs, allocated)
	}
	f, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if e, err := f.Get("k001"); err != nil || !bytes.Equal(e.Value, value) {
		t.Errorf("after the trim, k001 = %q, %v; want its value", e.Value, err)
	}
	if logs, allocated, size := logsAllocated(t, dir); allocated > size+int64(logs)<<16 {
		t.Errorf("%d logs of %.1f MiB still take %.1f MiB once the fold opened", logs, float64(size)/(1<<20), float64(allocated)/(1<<20))
	}
}
