package snapshot

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"slices"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// A growing fold's large batches (a first sync's) are not copied into the
// arena: their entries are read where Apply's write left them, in the
// log's page cache, through a read-only mapping of the log file (a
// window). A copy took a fresh page of memory per 4 KiB of entries, whose
// first touch on a virtual machine costs more than writing and fsyncing
// those bytes (BenchmarkApply), and held every entry twice, in the arena
// and in the page cache.
//
// Only durable entries are referenced so: a batch staged in a window is
// set in the index once its fsync succeeded (at once when it moves the
// cursor; under an unchanged cursor, whose fsync runs in the background,
// by whatever reads the index first, see tail.go), and dropped if it
// failed. Their pages are then clean, so if the kernel drops them, the
// mapping reads the same bytes back from the file. Nothing rewrites the
// log below its end (a failed append truncates it back to where it was,
// above every window's entries), and its lock keeps other writers of this
// package out; a process that truncates the file anyway makes the fold's
// next read of it fault (SIGBUS), as with any mapped file.
//
// A window maps windowSize bytes of the file from a page boundary, more
// than the file holds; the arena chunk that views it grows as batches are
// appended within it. Its entries are never written over (see stage). No
// window is used while a compaction runs, so once the compaction installs
// its image, which base then references, the index references no window:
// they are unmapped then, or when the last export that captured them ends,
// and at Close.

// windowSize is how much of the log a window maps: address space only,
// of which what batches fill is read. (A variable for tests.)
var windowSize int64 = 1 << 30

// pageSize is the system's page size, which a mapping's file offset and
// madvise's range must start at a multiple of (4 KiB on x86-64, up to 64
// KiB on arm64).
var pageSize = uintptr(os.Getpagesize())

// window is a mapping of the log file at a page boundary.
type window struct {
	off   int64  // the file offset of data[0]
	data  []byte // the mapping, windowSize bytes
	chunk int    // the arena chunk that views data up to the log's end
}

// stageMapped returns the references of updates' entries in the log, whose
// records (written, with the cursor's) Apply wrote at offset at, through a
// window; false when there is none to use (the batch does not fit one, or
// the log cannot be mapped). The caller makes them visible only once the
// write is durable. l.mu is held.
//
// The window must read what was written: on a filesystem where a shared
// mapping and writes are not coherent (some network and FUSE filesystems),
// the batch is copied instead, and so is every later one.
func (l *Log) stageMapped(updates []kvcore.Update, at int64, written []byte) ([]ref, bool) {
	n := int64(len(written))
	w := l.windowFor(at, at+n)
	if w == nil {
		return nil, false
	}
	populate(w.data[at-w.off : at+n-w.off])
	if !bytes.Equal(w.data[at-w.off:at+n-w.off], written) {
		l.mapFailed(errors.New("the mapping does not read back what was written"))
		return nil, false
	}
	staged := l.staged[:0]
	pos := at - w.off
	for i := range updates {
		u := &updates[i]
		r := tombstone
		if !u.IsRemoval() {
			r = mkref(w.chunk, int(pos)+5) // the payload, after crc and type
		}
		staged = append(staged, r)
		pos += int64(updateRecordLen(u))
	}
	l.staged = staged[:0]
	l.idx.ar.chunks[w.chunk] = w.data[:at+n-w.off]
	return staged, true
}

// windowFor returns a window holding the log's bytes from start to end,
// mapping a new one when the current one ends before end. l.mu is held.
func (l *Log) windowFor(start, end int64) *window {
	if l.mapErr != nil {
		return nil
	}
	if w := l.win; w != nil && end <= w.off+windowSize {
		return w
	}
	off := start &^ int64(pageSize-1)
	if end-off > windowSize {
		return nil
	}
	data, err := mapFile(l.f, off, int(windowSize))
	if err != nil {
		l.mapFailed(err)
		return nil
	}
	x := l.idx
	x.ar.chunks = append(x.ar.chunks, data[:0])
	x.ar.sealed = true // the next heap entry opens a chunk after it
	x.ar.windows = append(x.ar.windows, len(x.ar.chunks)-1)
	l.win = &window{off: off, data: data, chunk: len(x.ar.chunks) - 1}
	l.mapped = append(l.mapped, data)
	return l.win
}

// mapFailed copies every batch into memory from now on (until the next
// compaction's file), saying why once.
func (l *Log) mapFailed(err error) {
	l.mapErr = err
	if !errors.Is(err, errors.ErrUnsupported) {
		l.opts.Logger.Warn("snapshot: cannot read the log through a mapping; its entries are copied into memory instead",
			slog.String("path", l.path), slog.Any("error", err))
	}
}

// retireWindowsLocked stops using the log's windows, which the index no
// longer references (see the comment at the top of this file), and unmaps
// them unless an export still reads them. A compaction's new file is
// mapped again even if the last one could not be. l.mu is held.
func (l *Log) retireWindowsLocked() {
	l.win, l.mapErr = nil, nil
	l.retired = append(l.retired, l.mapped...)
	l.mapped = nil
	l.unmapRetiredLocked()
}

// unmapRetiredLocked unmaps the retired windows once no export reads a
// snapshot of the arena. l.mu is held.
func (l *Log) unmapRetiredLocked() {
	if l.exports > 0 {
		return
	}
	for _, data := range l.retired {
		if err := unmapFile(data); err != nil {
			l.opts.Logger.Warn("snapshot: unmap the log", slog.String("path", l.path), slog.Any("error", err))
		}
	}
	clear(l.retired)
	l.retired = l.retired[:0]
}

// writable reports whether the entry at r may be written over: whether it
// is in the arena's memory rather than in a window.
func (a *arena) writable(r ref) bool { return !slices.Contains(a.windows, int(r>>refOffBits)) }
