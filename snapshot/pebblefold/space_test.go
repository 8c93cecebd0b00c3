package pebblefold

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// lowSpaceFS is the operating system's file system, reporting avail bytes
// free (when not zero) to the fold's space checks.
type lowSpaceFS struct {
	vfs.FS
	avail atomic.Uint64
}

func (fs *lowSpaceFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	u, err := fs.FS.GetDiskUsage(path)
	if n := fs.avail.Load(); n != 0 {
		u.AvailBytes = n
	}
	return u, err
}

// Close does not flush a large memtable when the disk lacks the room for
// it: Pebble would retry the flush for ever on a full disk, and Close (a
// watch stopping, a reload) would hang. The next Open replays the log.
func TestCloseDoesNotFlushOnAFullDisk(t *testing.T) {
	fs := &lowSpaceFS{FS: vfs.Default}
	dir := filepath.Join(t.TempDir(), "fold")
	f, err := Open(dir, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", 4<<10)
	var rev uint64
	for range 128 { // 8 MiB of log, more than Close flushes
		var batch []kvcore.Update
		for range 16 {
			rev++
			batch = append(batch, putU(fmt.Sprintf("k%06d", rev), value, rev))
		}
		apply(t, f, rev, batch...)
	}
	if wal := f.db.Metrics().WAL.Size; wal <= flushOnCloseBytes {
		t.Fatalf("the log holds %d bytes, not more than the %d that Close flushes", wal, flushOnCloseBytes)
	}
	tables := func() int {
		names, err := fs.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, name := range names {
			if strings.HasSuffix(name, ".sst") {
				n++
			}
		}
		return n
	}
	before := tables()
	fs.avail.Store(1 << 20)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := tables(); n != before {
		t.Fatalf("Close with 1 MiB free wrote %d tables", n-before)
	}
	fs.avail.Store(0)
	if f, err = Open(dir, Options{FS: fs}); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Cursor() != kvcore.RevisionCursor(rev) {
		t.Fatalf("reopened at %v, want %d", f.Cursor(), rev)
	}
	e, err := f.Reader().Get(fmt.Sprintf("k%06d", rev))
	if err != nil || string(e.Value) != value {
		t.Fatalf("the last Apply's key after the reopen: %v", err)
	}
}

// A state sync (Options.Bulk) that would fill the disk with its runs or
// their tables fails with ENOSPC before writing them, keeping what it
// buffered; once space is freed, the checkpoint writes it all out.
func TestBulkRunsAndMergeKeepTheReserve(t *testing.T) {
	fs := &lowSpaceFS{FS: vfs.Default}
	dir := filepath.Join(t.TempDir(), "fold")
	f, err := Open(dir, Options{FS: fs, Bulk: true, BulkBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	value := strings.Repeat("v", 1<<10)
	put := func(from, to uint64) error {
		var batch []kvcore.Update
		for rev := from; rev <= to; rev++ {
			batch = append(batch, putU(fmt.Sprintf("k%06d", rev), value, rev))
		}
		return f.Apply(context.Background(), batch, kvcore.Cursor{})
	}
	if err := put(1, 200); err != nil { // runs spilled
		t.Fatal(err)
	}
	fs.avail.Store(uint64(reserveBytes(Options{MemTableSize: memTableSize}) + 32<<10)) // room for neither a run nor the tables
	var failed error
	for from := uint64(201); from < 2000 && failed == nil; from += 100 {
		failed = put(from, from+99)
	}
	if failed == nil {
		failed = f.Apply(context.Background(), nil, kvcore.RevisionCursor(2000))
	}
	if !errors.Is(failed, syscall.ENOSPC) || !strings.Contains(failed.Error(), dir) {
		t.Fatalf("a sync past the reserve: %v, want ENOSPC naming %s", failed, dir)
	}
	fs.avail.Store(0)
	last := uint64(2000)
	if err := put(1, last); err != nil {
		t.Fatal(err)
	}
	apply(t, f, last)
	for _, rev := range []uint64{1, 500, last} {
		if e, err := f.Reader().Get(fmt.Sprintf("k%06d", rev)); err != nil || string(e.Value) != value {
			t.Fatalf("k%06d after the checkpoint: %v", rev, err)
		}
	}
}

// Settle, a compaction of the whole fold, needs room for a copy of it.
func TestSettleNeedsRoomForACopy(t *testing.T) {
	fs := &lowSpaceFS{FS: vfs.Default}
	f, err := Open(filepath.Join(t.TempDir(), "fold"), Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	apply(t, f, 1, putU("a", strings.Repeat("v", 1<<20), 1))
	fs.avail.Store(uint64(reserveBytes(Options{MemTableSize: memTableSize}) + 1<<10))
	if err := f.Settle(context.Background()); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Settle without room for a copy: %v, want ENOSPC", err)
	}
	fs.avail.Store(0)
	if err := f.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// The free space a fold keeps follows its memtable size, and is never less
// than a fold of the default size keeps: a fold of small memtables (the
// agent's record of outputs) shares its file system with one of the
// default size, whose headroom it must leave.
func TestReserveFollowsMemTableSize(t *testing.T) {
	for _, c := range []struct {
		size    int64
		avail   uint64
		refused bool
	}{
		{0, 70 << 20, true}, {4 << 20, 70 << 20, true}, {4 << 20, 80 << 20, false},
		{128 << 20, 80 << 20, true}, {128 << 20, 140 << 20, false},
	} {
		fs := &lowSpaceFS{FS: vfs.Default}
		f, err := Open(filepath.Join(t.TempDir(), "fold"), Options{FS: fs, MemTableSize: c.size})
		if err != nil {
			t.Fatal(err)
		}
		fs.avail.Store(c.avail)
		err = f.Apply(context.Background(), []kvcore.Update{putU("k", "v", 1)}, kvcore.RevisionCursor(1))
		if got := errors.Is(err, syscall.ENOSPC); got != c.refused {
			t.Errorf("memtable size %d, %d MiB free: Apply = %v, want refused %v", c.size, c.avail>>20, err, c.refused)
		}
		f.Close()
	}
}
