package pebblefold

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// Options configures a [Fold]. The zero value is valid.
type Options struct {
	// NoSync commits batches without fsyncing Pebble's write-ahead log (the
	// Rust crate's default): an Apply survives a crash of the process, and a
	// power loss may roll the fold back to an earlier cursor, never to a
	// cursor ahead of its data.
	NoSync bool
	// CacheSize is the block cache size in bytes (default 64 MiB). It
	// decides the speed of point gets: one whose blocks are cached takes
	// about 4 µs, one that copies its data block from the page cache
	// (tables are mapped into memory for point reads) about 6 µs. At 1M
	// keys of 260 bytes (250 MB of tables) 64 MiB holds a quarter of the
	// blocks.
	CacheSize int64
	// FS is the file system (default the operating system's). Export and
	// Import need the default.
	FS vfs.FS
	// Logger receives Pebble's log lines (default: discarded).
	Logger *slog.Logger
	// Bulk holds the updates of an Apply that leaves the cursor where it
	// is (the chunks of a state sync, which [kvcore.WatchApplied] folds
	// under the cursor from before) in memory instead of committing them
	// through the write-ahead log, one fsync each. A full buffer is sorted
	// and spilled, unsynced, to a run file in the fold's directory. When
	// the updates must be written out (before an Apply that moves the
	// cursor records it, at Sync and Close, and before a read: reads see
	// them at once), the runs and the buffer are merged into sorted tables
	// ingested into Pebble in one step; a small buffer with no runs goes
	// through one unsynced batch, made durable by the cursor's commit. A
	// sync into an empty fold thus lands in Pebble's bottom level with
	// nothing left to compact (unless it spills more than 512 runs, 16
	// GiB at the default BulkBytes: those are merged into Pebble then, and
	// the next ones make a second layer for a compaction to merge). The
	// updates are durable once an Apply moves the cursor or Close returns;
	// a crash before may lose them, as it may lose any update past the
	// stored cursor, never one the cursor covers. A hydration needs disk
	// for its runs beside the tables they become: twice the data, until
	// the merge ends.
	Bulk bool
	// MemTableSize is the size Pebble's memtables grow to (default 64
	// MiB, for hydrations of millions of keys through fsynced Applies). It
	// sets the fold's disk footprint beside its tables: Pebble preallocates
	// its write-ahead log at 110% of it, and the fold keeps it (at least
	// the default) plus 8 MiB free on its file system (a write that would
	// leave less fails with [syscall.ENOSPC]). A store of small batches
	// (the agent's record of its outputs) does with a few MiB.
	MemTableSize int64
	// BulkBytes is the size of Bulk's buffer (default 32 MiB). Full
	// buffers are spilled while the next fills, so a hydration holds up
	// to three times this, and a merge 64 KiB of read buffer per run and
	// processor (up to 512 runs, merged by up to 4 processors).
	BulkBytes int
}

// Fold is a [kvcore.Fold] on Pebble.
type Fold struct {
	db       *pebble.DB
	lock     *pebble.Lock    // on dir, held from before db opens until after it closes
	damage   *corruption     // damage found in db's files, which fails every use
	po       *pebble.Options // db's options, for writing tables to ingest
	dir      string
	opts     Options
	readOnly bool

	// Every use of db holds a reference (acquire, release). Close marks
	// the fold closed, so that later uses fail at once with ErrClosed, and
	// waits for the references to drop to zero before closing db. A use
	// that starts inside a Range callback while Close waits therefore
	// fails instead of waiting (a read-write mutex would deadlock there:
	// the nested read lock queues behind Close's pending write lock, which
	// waits for the outer read lock).
	life      sync.Mutex
	idle      *sync.Cond // signalled when refs drops to zero
	refs      int        // under life
	closed    bool       // under life
	closeOnce sync.Once

	mu     sync.RWMutex // orders Apply; guards cursor, order and the bulk buffers
	cursor kvcore.Cursor
	order  []int32 // Apply's scratch: the batch's indexes in key order
	// With Options.Bulk, updates not written to db yet: bulk is filling;
	// sealed are full buffers, oldest first, being spilled to runs; spare
	// is a spilled buffer's memory, for the next.
	bulk, spare *bulk
	sealed      []*sealedBulk
	// runs are the spilled buffers, oldest first, not merged into db yet;
	// runSeq numbers their files.
	runs   []*run
	runSeq int
	// releasing closes the files of merged runs; Close waits for it.
	releasing sync.WaitGroup
	// pending is set while a buffer may hold updates, so that a read
	// knows without f.mu that it must write them out first.
	pending atomic.Bool
}

var _ kvcore.Fold = (*Fold)(nil)

// Open opens the fold in directory dir, creating it when absent, and reads
// the resume cursor ([Fold.Cursor]: none for a new fold). A stored cursor
// longer than 10 bytes is refused with [snapshot.ErrInvalidFormat].
func Open(dir string, opts Options) (*Fold, error) {
	return open(dir, opts, false)
}

// OpenReadOnly opens the existing fold in directory dir for reading: it
// writes nothing below dir (the replay of Pebble's write-ahead log stays in
// memory), and its Apply fails. It still takes Pebble's lock, so a fold
// another process has open is refused.
func OpenReadOnly(dir string, opts Options) (*Fold, error) {
	return open(dir, opts, true)
}

func open(dir string, opts Options, readOnly bool) (*Fold, error) {
	if opts.CacheSize <= 0 {
		opts.CacheSize = 64 << 20
	}
	if opts.BulkBytes <= 0 {
		opts.BulkBytes = bulkMaxBytes
	}
	if opts.MemTableSize <= 0 {
		opts.MemTableSize = memTableSize
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	lock, err := lockDir(opts.FS, dir, readOnly)
	if err != nil {
		return nil, fmt.Errorf("pebblefold: open %s: %w", dir, err)
	}
	if err := marked(opts.FS, dir); err != nil {
		lock.Close()
		return nil, fmt.Errorf("pebblefold: open %s: %w", dir, err)
	}
	if !readOnly {
		// What older logs reserved first: a disk they filled needs it.
		trimLogs(opts.FS, dir, opts.Logger)
		// Open replays the logs into tables.
		if err := checkSpace(opts.FS, dir, reserveBytes(opts)+logBytes(opts.FS, dir)); err != nil {
			lock.Close()
			return nil, fmt.Errorf("pebblefold: open %s: %w", dir, err)
		}
	}
	damage := &corruption{fs: opts.FS, dir: dir, log: opts.Logger, readOnly: readOnly}
	db, po, gate, err := openDB(dir, opts, lock, damage, readOnly)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("pebblefold: open %s: %w", dir, damagedOnOpen(err))
	}
	gate.opened()
	f := &Fold{db: db, lock: lock, damage: damage, po: po, dir: dir, opts: opts, readOnly: readOnly}
	if err := damage.check(); err != nil { // found by the replay of the log
		f.closeDB()
		return nil, fmt.Errorf("pebblefold: open %s: %w", dir, err)
	}
	if !readOnly {
		// Runs and tables a crash left before their ingestion: their
		// updates were past the cursor, so the bucket delivers them again.
		if err := opts.FS.RemoveAll(opts.FS.PathJoin(dir, ingestDir)); err != nil {
			f.closeDB()
			return nil, fmt.Errorf("pebblefold: open %s: removing tables not ingested: %w", dir, err)
		}
	}
	f.idle = sync.NewCond(&f.life)
	raw, closer, err := db.Get(cursorKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		f.closeDB()
		return nil, fmt.Errorf("pebblefold: open %s: read cursor: %w", dir, err)
	default:
		f.cursor, err = kvcore.CursorFromBytes(raw)
		closer.Close()
		if err != nil {
			f.closeDB()
			return nil, fmt.Errorf("pebblefold: open %s: %w: stored cursor is %d bytes, exceeds version token capacity",
				dir, snapshot.ErrInvalidFormat, len(raw))
		}
	}
	return f, nil
}

// openDB opens the Pebble database of a fold, with compactions held until
// gate.opened is called.
func openDB(dir string, opts Options, lock *pebble.Lock, damage *corruption, readOnly bool) (*pebble.DB, *pebble.Options, *compactionGate, error) {
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	po := pebbleOptions(opts, cache, readOnly)
	po.Lock = lock
	po.EventListener = &pebble.EventListener{DataCorruption: damage.found}
	gate := newCompactionGate()
	po.Experimental.CompactionScheduler = gate
	po.EnsureDefaults()
	db, err := pebble.Open(dir, po)
	if err != nil {
		gate.abandon()
		return nil, nil, nil, err
	}
	return db, po, gate, nil
}

// Cursor is the cursor of the last successful Apply, or the one Open read.
func (f *Fold) Cursor() kvcore.Cursor {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.cursor
}

// Apply commits updates and cursor as one Pebble batch, fsynced unless
// Options.NoSync is set. With Options.Bulk, updates under an unchanged
// cursor are buffered instead, and written out before the cursor moves.
func (f *Fold) Apply(ctx context.Context, updates []kvcore.Update, cursor kvcore.Cursor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.acquire(); err != nil {
		return err
	}
	defer f.release()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opts.Bulk && cursor == f.cursor {
		return f.addBulk(ctx, updates)
	}
	// The buffered updates are durable before the cursor that covers
	// them is written.
	if err := f.flushBulk(ctx); err != nil {
		return err
	}
	b := f.db.NewBatch()
	defer b.Close()
	// Keys go into the batch in ascending order (a stable order, so that
	// the last update of a key still wins): Pebble then inserts them into
	// its memtable from the previous key's position instead of from the
	// top of the skiplist, about half the cost for a batch of random keys.
	f.order = sortedOrder(f.order, updates)
	for _, i := range f.order {
		if err := addUpdate(b, &updates[i]); err != nil {
			return fmt.Errorf("pebblefold: apply: %w", err)
		}
	}
	if err := b.Set(cursorKey, cursor.Bytes(), nil); err != nil {
		return fmt.Errorf("pebblefold: apply: %w", err)
	}
	if err := checkSpace(f.opts.FS, f.dir, reserveBytes(f.opts)+int64(len(b.Repr()))); err != nil {
		return fmt.Errorf("pebblefold: apply to %s: %w", f.dir, err)
	}
	wo := pebble.Sync
	if f.opts.NoSync {
		wo = pebble.NoSync
	}
	if err := b.Commit(wo); err != nil {
		return fmt.Errorf("pebblefold: apply: %w", err)
	}
	f.cursor = cursor
	return nil
}

// Sync returns once every Apply so far is durable: it writes out the
// updates buffered under [Options.Bulk] and fsyncs Pebble's write-ahead
// log, which makes Applies committed under [Options.NoSync] survive a power
// loss too.
func (f *Fold) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.acquire(); err != nil {
		return err
	}
	defer f.release()
	if err := f.writePending(ctx); err != nil {
		return err
	}
	if f.readOnly {
		return nil
	}
	if err := checkSpace(f.opts.FS, f.dir, reserveBytes(f.opts)); err != nil {
		return fmt.Errorf("pebblefold: sync %s: %w", f.dir, err)
	}
	if err := f.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("pebblefold: sync %s: %w", f.dir, err)
	}
	return nil
}

// Settle compacts the whole fold into Pebble's bottom level, so that reads
// touch as few files as possible. Call it after a bulk hydration, before
// serving reads; it blocks until done and can take long on a large fold.
func (f *Fold) Settle(ctx context.Context) error {
	if err := f.acquire(); err != nil {
		return err
	}
	defer f.release()
	if err := f.writePending(ctx); err != nil {
		return err
	}
	// A compaction rewrites the fold: it needs room for a copy of it.
	need := reserveBytes(f.opts) + int64(f.db.Metrics().DiskSpaceUsage())
	if err := checkSpace(f.opts.FS, f.dir, need); err != nil {
		return fmt.Errorf("pebblefold: settle %s: %w", f.dir, err)
	}
	lower, upper := prefixBounds("")
	if err := f.db.Compact(ctx, lower, upper, true); err != nil {
		return fmt.Errorf("pebblefold: settle: %w", err)
	}
	return nil
}

// Get returns the entry of key, or an error wrapping [kvcore.ErrNotFound].
func (f *Fold) Get(key string) (kvcore.Entry, error) { return f.Reader().Get(key) }

// Range calls fn for the entries under prefix that sort after after, in
// ascending key order, from one consistent snapshot of the fold.
func (f *Fold) Range(ctx context.Context, prefix, after string, fn func(kvcore.Entry) error) error {
	return f.Reader().Range(ctx, prefix, after, fn)
}

// Reader returns a read-only view of the fold, safe for concurrent use from
// any goroutine until the fold is closed.
func (f *Fold) Reader() *Reader { return &Reader{f: f} }

// flushOnCloseBytes: Close flushes a memtable whose write-ahead log holds
// more than this, so that the next Open does not replay it (a 64 MiB log
// takes most of a second to replay).
const flushOnCloseBytes = 4 << 20

// Close waits for running reads and applies, writes out the updates
// buffered under [Options.Bulk], waits for the files of merged runs to be
// closed, flushes the memtable when it is large (and the disk has room for
// it), then closes the database.
// Once Close has begun, new calls fail with [snapshot.ErrClosed], including
// a Get or Range made inside a running Range callback (which then returns
// and lets Close finish). A Range callback must not call Close itself.
func (f *Fold) Close() (err error) {
	f.closeOnce.Do(func() {
		f.life.Lock()
		f.closed = true
		for f.refs > 0 {
			f.idle.Wait()
		}
		f.life.Unlock()
		f.mu.Lock()
		if err = f.flushBulk(context.Background()); err != nil {
			f.abandonSealed()
		}
		f.mu.Unlock()
		f.releasing.Wait()
		// A flush on a full disk retries for ever: the next Open replays
		// the log instead (its own check waits for the space).
		if err == nil && !f.readOnly {
			if wal := f.db.Metrics().WAL.Size; wal > flushOnCloseBytes && checkSpace(f.opts.FS, f.dir, reserveBytes(f.opts)+int64(wal)) == nil {
				err = f.db.Flush()
			}
		}
		err = errors.Join(err, f.closeDB())
	})
	return err
}

// closeDB closes db, then releases the lock on its directory.
func (f *Fold) closeDB() error {
	return errors.Join(f.db.Close(), f.lock.Close())
}

// Damaged returns the damage found in the fold's files (a table whose
// checksum does not match), which fails every use of the fold: an error
// wrapping [snapshot.ErrCorrupted] that names the file and says what to
// do; nil while none was found. Errors that pass through other layers (a
// plugin's read of the fold) may no longer wrap it: ask the fold.
func (f *Fold) Damaged() error { return f.damage.check() }

// acquire takes a reference to db, or fails once Close has begun.
func (f *Fold) acquire() error {
	f.life.Lock()
	defer f.life.Unlock()
	if f.closed {
		return snapshot.ErrClosed
	}
	if err := f.damage.check(); err != nil {
		return err
	}
	f.refs++
	return nil
}

// writePending writes out the updates buffered under Options.Bulk, if any.
// Its caller holds a reference.
func (f *Fold) writePending(ctx context.Context) error {
	if !f.pending.Load() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flushBulk(ctx)
}

// release drops a reference taken by acquire.
func (f *Fold) release() {
	f.life.Lock()
	defer f.life.Unlock()
	if f.refs--; f.refs == 0 {
		f.idle.Broadcast()
	}
}

// Reader reads a [Fold]. It is safe for concurrent use.
type Reader struct{ f *Fold }

// reading runs fn with the database unless the fold is closed or closing,
// once the updates buffered under Options.Bulk are written out.
func (r *Reader) reading(ctx context.Context, fn func(db *pebble.DB) error) error {
	if err := r.f.acquire(); err != nil {
		return err
	}
	defer r.f.release()
	if err := r.f.writePending(ctx); err != nil {
		return err
	}
	return fn(r.f.db)
}

// keyBufs holds the buffers Get encodes its data key in (Pebble does not
// keep the key once Get returns), so that a get allocates only the entry.
var keyBufs = sync.Pool{New: func() any { return new([]byte) }}

// Get returns the entry of key, or an error wrapping [kvcore.ErrNotFound].
func (r *Reader) Get(key string) (kvcore.Entry, error) {
	var e kvcore.Entry
	err := r.reading(context.Background(), func(db *pebble.DB) error {
		kb := keyBufs.Get().(*[]byte)
		*kb = dataKey(*kb, key)
		raw, closer, err := db.Get(*kb)
		keyBufs.Put(kb)
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("pebblefold: get %q: %w", key, kvcore.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("pebblefold: get %q: %w", key, err)
		}
		defer closer.Close()
		e, err = decodeEntry(key, raw)
		return err
	})
	return e, err
}

// Range calls fn for the entries under prefix that sort after after, in
// ascending key order, from one consistent snapshot. It stops at, and
// returns, fn's first error.
func (r *Reader) Range(ctx context.Context, prefix, after string, fn func(kvcore.Entry) error) error {
	return r.reading(ctx, func(db *pebble.DB) error {
		lower, upper := prefixBounds(prefix)
		if after != "" {
			// The smallest data key after after is after's key plus a 0 byte.
			if from := append(dataKey(nil, after), 0); bytes.Compare(from, lower) > 0 {
				lower = from
			}
		}
		it, err := db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return fmt.Errorf("pebblefold: range %q: %w", prefix, err)
		}
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			if n++; n%256 == 0 {
				if err := ctx.Err(); err != nil {
					it.Close()
					return err
				}
			}
			key := it.Key()[1:]
			if !utf8.Valid(key) {
				it.Close()
				return fmt.Errorf("pebblefold: range %q: %w: key %q is not valid UTF-8", prefix, snapshot.ErrInvalidFormat, key)
			}
			raw, err := it.ValueAndErr()
			if err != nil {
				it.Close()
				return fmt.Errorf("pebblefold: range %q: %w", prefix, err)
			}
			e, err := decodeEntry(string(key), raw)
			if err == nil {
				err = fn(e)
			}
			if err != nil {
				it.Close()
				return err
			}
		}
		if err := it.Close(); err != nil {
			return fmt.Errorf("pebblefold: range %q: %w", prefix, err)
		}
		return ctx.Err()
	})
}
