package pebblefold

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
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
	logs, allocated, size := logsAllocated(t, dir)
	if logs < 2 {
		t.Fatalf("%d logs: the memtable did not rotate", logs)
	}
	if allocated > size+int64(logs)*logReserveStep {
		t.Errorf("%d logs take %.1f MiB of the file system for %.1f MiB written", logs, float64(allocated)/(1<<20), float64(size)/(1<<20))
	}
}

// A log reserves disk a step ahead of its writes, so that most appends
// need none (Pebble takes a failed log write for fatal); other files
// reserve nothing.
func TestALogReservesAStepAhead(t *testing.T) {
	dir := t.TempDir()
	probe, err := os.Create(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Fallocate(int(probe.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, 1<<20)
	probe.Close()
	if err != nil {
		t.Skipf("the file system cannot reserve: %v", err)
	}
	fs := steppedLogs(vfs.Default)
	allocated := func(path string) int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Blocks * 512
	}
	write := func(f vfs.File, n int) {
		if _, err := f.Write(bytes.Repeat([]byte("x"), n)); err != nil {
			t.Fatal(err)
		}
	}
	logPath, otherPath := filepath.Join(dir, "000001.log"), filepath.Join(dir, "000002.sst")
	log, err := fs.Create(logPath, walCategory)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	other, err := fs.Create(otherPath, "pebble-compaction")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Pebble asks for its 70 MiB; the log takes a step instead.
	if err := log.Preallocate(0, 70<<20); err != nil {
		t.Fatal(err)
	}
	write(log, 100)
	write(other, 100)
	if got := allocated(logPath); got < logReserveStep || got > 2*logReserveStep {
		t.Errorf("a log of 100 bytes takes %d bytes, want a step (%d) reserved", got, logReserveStep)
	}
	write(log, logReserveStep)
	if got := allocated(logPath); got < 2*logReserveStep || got > 3*logReserveStep {
		t.Errorf("a log past its first step takes %d bytes, want two steps (%d)", got, 2*logReserveStep)
	}
	if got := allocated(otherPath); got > 64<<10 {
		t.Errorf("a table of 100 bytes takes %d bytes: reserved as a log", got)
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
