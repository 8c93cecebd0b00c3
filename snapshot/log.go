package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Log is the default fold store: the PGSS append log on disk and the whole
// fold in memory (or, for a growing fold's large batches, in the log's page
// cache: see the package documentation). It implements [kvcore.Fold].
//
// Apply appends the batch and its cursor in one write (data before cursor,
// so a torn write leaves data ahead of the cursor, never the reverse) and,
// in the default [SyncCheckpoint] mode, fsyncs before returning, except
// when it leaves the cursor where it was (see Apply). When enough
// has been appended, a background goroutine compacts the log: it writes the
// sorted fold into a temporary file beside it without holding the lock,
// then briefly takes the lock to copy the records appended meanwhile, fsync,
// rename over the log and fsync the directory. Appends continue on the new
// file, never on the replaced one.
//
// Get, Range and Cursor are safe for concurrent use with each other and with
// Apply. Apply, Export, Compact and Close must not be called concurrently
// with each other. A Log holds the file's lock until Close (see Open).
type Log struct {
	path string
	opts Options
	fs   fsys

	mu          sync.RWMutex
	idx         *index
	cursor      kvcore.Cursor
	lock        *os.File // holds the log's lock until Close
	f           *os.File // the log, read and written at explicit offsets
	size        int64    // bytes in the log
	appended    int64    // bytes appended since the last compaction
	due         int64    // appended bytes at which compaction is due (see garbageDueLocked)
	recheck     int64    // appended bytes at which to look at the garbage again
	scratch     []byte
	staged      []ref      // Apply's arena references, reused
	win         *window    // the window on l.f that batches are staged through, if any
	mapped      [][]byte   // every window the index may reference
	retired     [][]byte   // windows the index no longer references, left for exports to finish
	mapErr      error      // why the log could not be mapped: entries are copied
	unsynced    chan error // the fsync of an Apply that left the cursor unchanged, still running
	deferred    int64      // bytes of the last Applies whose fsync is left to the next one (see Apply)
	err         error      // sticky: the file may hold a write we could not undo
	dirUnsynced bool       // a compaction's rename is not known to be durable yet
	closed      bool
	job         *compactJob // the running compaction, if any
	exports     int         // exports reading a snapshot of the arena without the lock
	compactions int
	wg          sync.WaitGroup
}

var _ kvcore.Fold = (*Log)(nil)

// Open loads the fold stored at path (compacting a dirty file as [Load]
// does) and opens it for appending, creating it when it does not exist. The
// fold's [Log.Cursor] is the resume cursor: none for a new fold. A file that
// load refuses is an error wrapping [ErrInvalidFormat] or [ErrCorrupted] and
// is left untouched.
//
// The Log holds the file's lock (path + ".lock", created beside it) until
// Close: a second Open, [OpenWriter] or [Repair] of the same path, in this
// process or another, fails with [ErrLocked] rather than replace the file
// under it.
func Open(path string, opts Options) (*Log, error) {
	l := &Log{path: path, opts: opts.withDefaults(), fs: osFS()}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

// open takes the lock, loads the file and opens it. On error it releases
// the lock.
func (l *Log) open() (err error) {
	if l.lock, err = lockLog(l.path); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			l.wg.Wait() // a retired file
			l.lock.Close()
		}
	}()
	removeTemps(l.path) // leftovers of a crash: no one else writes them while we hold the lock
	res, read, err := openFileImage(l.path)
	switch {
	case errors.Is(err, fs.ErrNotExist): // only the read says the file is missing
		l.idx = newIndex()
	case err != nil:
		return fmt.Errorf("snapshot: load %s: %w", l.path, err)
	default:
		rep, err := l.fs.load(l.path, report(res))
		l.retire(read) // held open through the rewrite, which replaced it
		if err != nil {
			return err
		}
		l.idx = rep.rep.idx
		if !rep.rep.empty() {
			l.cursor = rep.rep.cursor
		}
	}
	l.f, l.size, err = l.fs.openLog(l.path, 0)
	if err != nil {
		return err
	}
	l.due = max(l.opts.CompactThreshold, l.size)
	return nil
}

// retire closes f, a log file this Log read or appended to, on a goroutine
// Close waits for. Once a rewrite renamed a new file over it, f holds the
// replaced file's last reference, and closing it frees the file's blocks:
// for a log of hundreds of megabytes that takes the filesystem a quarter of
// a second (ext4), which neither a load nor the Applies waiting for a
// compaction's lock need to wait for.
func (l *Log) retire(f *os.File) {
	l.wg.Go(func() { f.Close() })
}

// Cursor is the cursor of the last successful Apply, or the one loaded by Open.
func (l *Log) Cursor() kvcore.Cursor {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cursor
}

// Len is the number of live keys.
func (l *Log) Len() int {
	l.mu.Lock() // count may install a background merge
	defer l.mu.Unlock()
	l.indexTailLocked()
	return l.idx.count()
}

func (l *Log) usable() error {
	if l.closed {
		return ErrClosed
	}
	if l.err != nil {
		return fmt.Errorf("%w: %w", ErrPoisoned, l.err)
	}
	return nil
}

// Apply folds updates in order and persists them with cursor. Updates the
// format cannot hold are refused before anything is written ([ErrTooLarge]).
//
// An Apply that leaves the cursor as it is (updates folded ahead of a
// checkpoint, which a restart from that cursor delivers again) returns once
// its write is done and its updates are visible, before its fsync. A write
// that brings what is unsynced past 64 KiB (an initial sync's chunk) has
// its fsync started at once, in the background, overlapping whatever the
// caller does next; the next Apply waits for it before writing anything
// (as does a read that comes first, when a growing fold reads the batch
// from the log rather than a copy: see the package documentation). A
// smaller one (a live batch folded ahead of its apply) is left to the next
// fsync: started at once, that fsync would compete for the disk with the
// caller's own (the files an apply commits, whose renames are what a
// reader waits for), and the checkpoint that follows writes its cursor
// after it and makes both durable with its one fsync ([Log.Sync],
// [Log.Compact] and Close fsync it too). So at most 64 KiB is ever left
// unsynced (see [SyncCheckpoint]), and an Apply that moves the cursor
// returns only once it and everything before it are durable. An fsync that
// fails poisons the log like any other; the Apply (or Sync, Compact or
// Close) that ran or awaited it returns its error, and a batch read from
// the log whose fsync failed is dropped from the fold.
//
// If the write fails, the log is truncated back and nothing changes. If
// that truncation or an fsync fails, the fold refuses every later Apply
// with [ErrPoisoned]: reopen it to recover from the file. If the directory
// fsync after a compaction's rename failed, Apply (in [SyncCheckpoint]
// mode) first retries it and, while it fails, returns its error and
// changes nothing.
func (l *Log) Apply(ctx context.Context, updates []kvcore.Update, cursor kvcore.Cursor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range updates {
		if err := checkUpdate(&updates[i]); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if err := l.awaitSyncLocked(); err != nil {
		return err
	}
	if err := l.syncDirLocked(); err != nil {
		return err
	}
	buf := l.scratch[:0]
	for i := range updates {
		buf = appendUpdate(buf, &updates[i])
	}
	buf = appendCursor(buf, cursor)
	if cap(buf) <= 1<<20 {
		l.scratch = buf
	}
	if _, err := l.fs.writeAt(l.f, buf, l.size); err != nil {
		if terr := l.fs.truncate(l.f, l.size); terr != nil {
			l.err = errors.Join(err, terr)
		}
		return fmt.Errorf("snapshot: append to %s: %w", l.path, err)
	}
	// The index work of a large batch overlaps the fsync: entries are
	// copied into the arena (and earlier changes merged) while it runs,
	// and become visible only once it succeeded. A small batch that moves
	// the cursor fsyncs first. Any fsync also makes durable the writes
	// earlier Applies left unsynced.
	unsynced := l.deferred + int64(len(buf))
	deferred := l.opts.Sync == SyncCheckpoint && cursor == l.cursor && unsynced <= deferSyncBytes
	var (
		staged []ref
		mapped bool // staged in a window: the batch becomes the index's tail
	)
	switch {
	case l.opts.Sync != SyncCheckpoint || deferred:
		staged = l.stageLocked(updates)
	case len(updates) < syncAsideMin && cursor != l.cursor:
		if err := l.fs.sync(l.f); err != nil {
			return l.syncFailed(err)
		}
		staged = l.stageLocked(updates)
	case cursor == l.cursor:
		// The fsync may run past this Apply: the next one, or whatever
		// needs the log durable, waits for it (awaitSyncLocked).
		// A growing fold's batch staged in a window becomes visible
		// only once this fsync succeeded (see indexTailLocked).
		synced := make(chan error, 1)
		go func(f *os.File, sync func(*os.File) error) { synced <- sync(f) }(l.f, l.fs.sync)
		staged, mapped = l.stageDurableLocked(updates, l.size, buf)
		l.unsynced = synced
	default:
		// This goroutine fsyncs and another does the index work. The other
		// way round, a goroutine started for the fsync waited, whenever
		// both processors were busy (a first sync's background merge),
		// until this one blocked after the index work: the two ran one
		// after the other. Now the fsync starts at once, and the index
		// work runs as soon as the runtime hands this goroutine's
		// processor over for the system call.
		done := make(chan struct{})
		go func() {
			defer close(done)
			staged, mapped = l.stageDurableLocked(updates, l.size, buf)
		}()
		err := l.fs.sync(l.f)
		<-done
		if err != nil {
			return l.syncFailed(err)
		}
	}
	if mapped {
		l.idx.deferSet(updates, staged)
	} else {
		for i, r := range staged {
			l.idx.set(&updates[i], r)
		}
	}
	l.cursor = cursor
	l.deferred = 0
	if deferred {
		l.deferred = unsynced
	}
	l.size += int64(len(buf))
	l.appended += int64(len(buf))
	// A batch whose fsync still runs is left for the next Apply to count:
	// the check would have to wait for it (see indexTailLocked).
	if l.job == nil && !l.tailPendingLocked() && l.appended > max(l.due, l.recheck) && l.garbageDueLocked() {
		l.startCompaction()
	}
	return nil
}

// stageLocked merges mem into base if that is due and stages updates in
// the arena (see index.stage), returning their references. l.mu is held,
// by this goroutine or by the Apply that waits for it.
func (l *Log) stageLocked(updates []kvcore.Update) []ref {
	l.mergeDueLocked()
	return l.copyLocked(updates)
}

// stageDurableLocked is stageLocked for a batch whose records (written)
// Apply wrote at offset at, and whose fsync runs: a growing fold
// references them in the log (see window) while no compaction runs, and
// reports so (mapped), and the caller then makes them visible only once
// they are durable (see tail.go).
func (l *Log) stageDurableLocked(updates []kvcore.Update, at int64, written []byte) (staged []ref, mapped bool) {
	l.mergeDueLocked()
	if l.idx.growing && l.job == nil {
		if staged, ok := l.stageMapped(updates, at, written); ok {
			return staged, true
		}
	}
	return l.copyLocked(updates), false
}

// mergeDueLocked sets the index's tail in mem (see indexTail), then merges
// mem into base, in the background for a growing fold, when that is due
// and no compaction runs. l.mu is held.
func (l *Log) mergeDueLocked() {
	l.indexTailLocked()
	l.idx.pollMerge()
	if len(l.idx.mem) > l.idx.mergeThreshold() && l.job == nil {
		if l.idx.growing {
			l.idx.startMerge()
		} else {
			l.idx.merge()
		}
	}
}

// copyLocked copies updates into the arena (see index.stage) and returns
// their references. l.mu is held.
func (l *Log) copyLocked(updates []kvcore.Update) []ref {
	staged := l.staged[:0]
	for i := range updates {
		staged = append(staged, l.idx.stage(&updates[i], l.job == nil && l.exports == 0))
	}
	l.staged = staged[:0]
	return staged
}

// deferSyncBytes is the most that Applies under an unchanged cursor leave
// unsynced for the next fsync (see Apply).
const deferSyncBytes = 64 << 10

// syncAsideMin is the smallest batch moving the cursor whose index work
// Apply runs on a goroutine beside its fsync (under an unchanged cursor,
// the fsync of a write that is not left unsynced runs on a goroutine
// instead). A smaller one's index work takes microseconds, less than
// handing it to a goroutine and waiting for it: fsyncing first, in line,
// made a 16-update Apply on a 1M-key log about 45 µs faster at the median
// on a 2-core VM (BenchmarkCheckpoint, ~300 µs).
const syncAsideMin = 64

// settleLocked makes every Apply so far durable: it runs the fsync that
// Applies left to the next one, or waits for the one that runs in the
// background (see Apply). Its failure poisons the log: the page cache and
// the disk may now disagree. l.mu is held.
func (l *Log) settleLocked() error {
	if l.deferred > 0 {
		l.deferred = 0
		if err := l.fs.sync(l.f); err != nil {
			return l.syncFailed(err)
		}
	}
	return l.awaitSyncLocked()
}

// awaitSyncLocked waits for the fsync that runs in the background, if any
// (see Apply). Its failure poisons the log. l.mu is held.
func (l *Log) awaitSyncLocked() error {
	if l.unsynced == nil {
		return nil
	}
	err := <-l.unsynced
	l.unsynced = nil
	if err != nil {
		l.idx.dropTail() // its batch is not durable (see indexTailLocked)
		return l.syncFailed(err)
	}
	return nil
}

// syncFailed poisons the log with err, a failed fsync of it (the page cache
// and the disk may now disagree), and returns err naming the log. l.mu is
// held.
func (l *Log) syncFailed(err error) error {
	l.err = err
	return fmt.Errorf("snapshot: sync %s: %w", l.path, err)
}

// Sync returns once every Apply so far is durable: it settles the fsync of
// an Apply that left the cursor unchanged (see Apply).
// In [SyncNone] mode it does nothing.
func (l *Log) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	return l.settleLocked()
}

// garbageDueLocked reports whether a compaction is worth its I/O now that
// the appends since the last one exceed due: due first grows to the size
// of the compacted fold (a large fold is not rewritten for every few MiB
// of changes), and the log must hold at least due/2 bytes of garbage
// (overwritten and deleted records, old cursors). A log that mostly grew,
// as in a first sync, is not rewritten for nothing; the check then waits
// until enough bytes are appended to make up the difference. l.mu is held.
//
// A growing fold is first checked against a lower bound of its garbage,
// which needs no merge: as if every put in mem added a key. A first sync
// would otherwise merge mem into base whenever its appends cross the next
// recheck, long before mem is due for it (see mergeThreshold), and those
// early merges, each a copy of base, cost it more than all the others.
// Its puts do mostly add keys, so the bound is close; for a fold whose
// keys change, the bound would be far off, and the check merges.
func (l *Log) garbageDueLocked() bool {
	l.indexTailLocked()
	x := l.idx
	if x.growing {
		most := compactedSize(x.liveBytes+x.memBytes, x.live+x.memPuts, l.cursor)
		if need := max(l.due, most)/2 - (l.size - most); need > 0 {
			l.recheck = l.appended + need
			return false
		}
	}
	x.merge() // settles live and liveBytes
	live := compactedSize(x.liveBytes, x.live, l.cursor)
	l.due = max(l.due, live)
	if l.appended <= l.due {
		return false
	}
	need := l.due/2 - (l.size - live)
	if need <= 0 {
		return true
	}
	l.recheck = l.appended + need
	return false
}

// syncDirLocked retries the directory fsync that failed after a
// compaction renamed its file over the log. Until it succeeds a power loss
// can bring the replaced file back, and with it lose every batch appended
// to the new one, so in SyncCheckpoint mode Apply acknowledges nothing
// before it. It runs before the batch is written: on failure nothing
// changed and the next Apply tries again. l.mu is held.
func (l *Log) syncDirLocked() error {
	if !l.dirUnsynced || l.opts.Sync != SyncCheckpoint {
		return nil
	}
	if err := l.fs.syncDir(filepath.Dir(l.path)); err != nil {
		return fmt.Errorf("snapshot: sync the directory of %s after compacting it: %w", l.path, err)
	}
	l.dirUnsynced = false
	return nil
}

// Get returns the entry of key, or an error wrapping [kvcore.ErrNotFound].
func (l *Log) Get(key string) (kvcore.Entry, error) {
	defer l.rlockIndexed()()
	if l.closed {
		return kvcore.Entry{}, ErrClosed
	}
	e, ok := l.idx.get(key)
	if !ok {
		return kvcore.Entry{}, fmt.Errorf("snapshot: get %q: %w", key, kvcore.ErrNotFound)
	}
	return e, nil
}

// rlockIndexed read-locks the log, or write-locks it while the index has a
// tail to set first (see indexTail), and returns the matching unlock.
func (l *Log) rlockIndexed() (unlock func()) {
	l.mu.RLock()
	if len(l.idx.tail) == 0 {
		return l.mu.RUnlock
	}
	l.mu.RUnlock()
	l.mu.Lock()
	l.indexTailLocked()
	return l.mu.Unlock
}

// rangePage is how many entries Range reads per turn of the read lock.
const rangePage = 256

// Range calls fn for the entries under prefix that sort after after, in
// ascending key order. It reads them a page at a time and does not hold a
// lock while fn runs, so fn may call Get or Apply; each key is seen at most
// once, with a value it had at some moment during the call.
func (l *Log) Range(ctx context.Context, prefix, after string, fn func(kvcore.Entry) error) error {
	page := make([]kvcore.Entry, 0, rangePage)
	first := after == ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return ErrClosed
		}
		if len(l.idx.tail) > 0 || l.idx.memKeysStale() || l.idx.pending != nil {
			// The last batch is not set in mem, the sorted view of recent
			// changes is stale, or changes are being merged in the
			// background; bring them up to date under the write lock
			// (readers never mutate the index).
			l.mu.RUnlock()
			l.mu.Lock()
			l.indexTailLocked()
			l.idx.finishMerge()
			l.idx.sortedMemKeys()
			l.mu.Unlock()
			continue
		}
		var more bool
		page, more = l.idx.page(page[:0], prefix, after, first, rangePage)
		l.mu.RUnlock()
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		after, first = page[len(page)-1].Key, false
	}
}

// Close waits for a running compaction and closes the file. A closed Log
// holds no entries (Len is 0).
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	serr := l.settleLocked()
	l.idx.stop()
	l.mu.Unlock()
	l.wg.Wait()
	l.mu.Lock()
	l.idx = newIndex() // drop the fold, whose windows go now
	l.retireWindowsLocked()
	l.mu.Unlock()
	err := errors.Join(serr, l.f.Close())
	l.lock.Close() // after the log: a later opener must not see it still open
	return err
}

// snapshot is a consistent, immutable view of the fold for writing a
// compacted image without holding the lock.
type snapshot struct {
	ar     arena // a copy of the chunk table; no put is written over an entry while it is read (see stage)
	refs   []ref
	cursor kvcore.Cursor
	live   int
	bytes  int64
}

// snapshotLocked captures the fold. The arena's current chunk is sealed so
// that later entries land in chunks the snapshot does not see.
func (l *Log) snapshotLocked() snapshot {
	l.indexTailLocked()
	x := l.idx
	refs, live, bytes := x.merged()
	x.ar.sealed = true
	return snapshot{ar: arena{chunks: slices.Clone(x.ar.chunks)}, refs: refs, cursor: l.cursor, live: live, bytes: bytes}
}

func (s *snapshot) size() int64 { return compactedSize(s.bytes, s.live, s.cursor) }

// write streams the compacted image into a fsynced temporary file beside path.
func (s *snapshot) write(fs *fsys, path string) (*os.File, error) {
	return fs.createImage(path, s.size(), func(w io.Writer) error {
		return writeCompacted(w, &s.ar, s.refs, s.cursor)
	})
}

// writeImage builds the compacted image in memory while writing it into a
// fsynced temporary file beside path, and returns the file and the image
// as an arena with its entries' references.
func (s *snapshot) writeImage(fs *fsys, path string) (*os.File, arena, []ref, error) {
	var (
		img  []byte
		refs []ref
	)
	f, err := fs.createImage(path, s.size(), func(w io.Writer) (err error) {
		img, refs, err = buildImage(w, &s.ar, s.refs, s.cursor, s.size(), false)
		return err
	})
	return f, imageArena(img), refs, err
}

// Stats describes the log.
type Stats struct {
	Keys        int   // live keys
	FileSize    int64 // bytes in the log file
	Appended    int64 // bytes appended since the last compaction
	Compactions int   // compactions completed since Open
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock() // count may install a background merge
	defer l.mu.Unlock()
	l.indexTailLocked()
	return Stats{Keys: l.idx.count(), FileSize: l.size, Appended: l.appended, Compactions: l.compactions}
}
