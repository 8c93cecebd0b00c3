package pebblefold

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// With [Options.Bulk], the updates of Applies that leave the cursor where
// it is are held in a bulk buffer. A full buffer is spilled to a run file
// (runs.go); when the updates must be written out, the runs and the buffer
// are merged into tables ingested in one step, or, when there are no runs
// and the buffer is small, written through one unsynced batch. Either way
// they skip the write-ahead log's fsync and, when ingested, the memtable's
// skiplist, which cost most of a hydration's time.
const (
	// bulkMaxBytes is the default Options.BulkBytes: the size of a run.
	bulkMaxBytes = 32 << 20
	// bulkIngestMin: a smaller buffer with no runs goes through a batch,
	// which costs less than writing, syncing and ingesting tables.
	bulkIngestMin = 1 << 20
	// ingestFileSize: what is ingested is cut into tables of about this
	// size, so that compactions can take it in pieces.
	ingestFileSize = l0TargetFileSize
	// ingestDir is the directory in the fold's directory that holds the
	// runs until they are merged, and tables until Pebble has ingested
	// them.
	ingestDir = "ingest"
)

// bulkBlockSize is the size of the blocks of a bulk buffer's arena. An
// arena of blocks grows without copying what it holds.
const bulkBlockSize = 1 << 20

// bulk is the buffer of updates not yet written to Pebble.
type bulk struct {
	// blocks[:used] hold each entry's data key, then its stored value;
	// the blocks after are kept for reuse.
	blocks [][]byte
	used   int
	size   int // bytes held
	// ents are the entries, each add's in key order (the same key in
	// arrival order) and after those of the adds before: ents[ends[i-1]:
	// ends[i]] is run i, the entries of an add (sorting a thousand updates
	// is much faster than sorting a quarter million entries scattered over
	// the arena). A later entry of a key is a later update of it.
	ents []bulkEnt
	ends []int32
	// shared is the length of the prefix every key held shares.
	shared int
	// add's scratch: the updates it adds, by index, with their
	// abbreviated keys.
	adding []abbreviated
	// flush's scratch: the merged order, and the heap of runs merging.
	order []int32
	heap  []bulkRun
	// spilled is the run the buffer was spilled to.
	spilled *run
}

// bulkRun is a run being merged: ents[pos:end] are left, the first with
// key key (held here, so that the merge's comparisons read the keys alone)
// abbreviated to abbr.
type bulkRun struct {
	key      []byte
	abbr     uint64
	pos, end int32
}

// less orders run heads by key, then by arrival.
func (r *bulkRun) less(o *bulkRun) bool {
	if r.abbr != o.abbr {
		return r.abbr < o.abbr
	}
	if c := bytes.Compare(r.key, o.key); c != 0 {
		return c < 0
	}
	return r.pos < o.pos
}

// abbreviated is an update of an add, by its index, and its abbreviated
// key.
type abbreviated struct {
	abbr uint64
	x    int32
}

// head loads the entry at pos, or reports that the run is done.
func (b *bulk) head(r *bulkRun) bool {
	if r.pos == r.end {
		return false
	}
	r.key = b.key(r.pos)
	r.abbr = abbreviate(r.key, b.shared)
	return true
}

type bulkEnt struct {
	blk, off uint32 // where the data key is in blocks
	klen     uint32
	vlen     int32 // -1 for a removal
}

func (b *bulk) key(i int32) []byte {
	e := b.ents[i]
	return b.blocks[e.blk][e.off : e.off+e.klen]
}

func (b *bulk) value(i int32) []byte {
	e := b.ents[i]
	at := e.off + e.klen
	return b.blocks[e.blk][at : at+uint32(e.vlen)]
}

// alloc returns n bytes of the arena and where they are.
func (b *bulk) alloc(n int) (blk, off uint32, dst []byte) {
	if b.used == 0 || cap(b.blocks[b.used-1])-len(b.blocks[b.used-1]) < n {
		switch {
		case b.used < len(b.blocks) && cap(b.blocks[b.used]) >= n:
			b.blocks[b.used] = b.blocks[b.used][:0]
		case b.used < len(b.blocks):
			b.blocks[b.used] = make([]byte, 0, max(n, bulkBlockSize))
		default:
			b.blocks = append(b.blocks, make([]byte, 0, max(n, bulkBlockSize)))
		}
		b.used++
	}
	last := &b.blocks[b.used-1]
	at := len(*last)
	*last = (*last)[:at+n]
	b.size += n
	return uint32(b.used - 1), uint32(at), (*last)[at : at+n]
}

// add appends updates, or none of them when one is invalid. The updates
// are copied in key order (the same key in arrival order), so that each
// add is a run of the buffer, held in sequence: the merge of the runs
// then reads the arena as streams, not at random (which, over a buffer
// of tens of megabytes, misses the caches and the TLB on every entry).
func (b *bulk) add(updates []kvcore.Update) error {
	for i := range updates {
		if err := checkUpdate(&updates[i]); err != nil {
			return err
		}
	}
	if len(updates) == 0 {
		return nil
	}
	// Sort the updates by the keys after the prefix they share.
	shared := len(updates[0].Key)
	for i := range updates {
		shared = commonPrefix(updates[0].Key[:shared], updates[i].Key)
	}
	if len(b.ents) == 0 {
		b.shared = 1 + shared // data keys start with dataPrefix
	} else {
		b.shared = 1 + commonPrefix(b.prefix()[1:], updates[0].Key[:shared])
	}
	b.adding = b.adding[:0]
	for i := range updates {
		b.adding = append(b.adding, abbreviated{abbreviate(updates[i].Key, shared), int32(i)})
	}
	slices.SortFunc(b.adding, func(p, q abbreviated) int {
		if p.abbr != q.abbr {
			return cmp.Compare(p.abbr, q.abbr)
		}
		if c := strings.Compare(updates[p.x].Key, updates[q.x].Key); c != 0 {
			return c
		}
		return cmp.Compare(p.x, q.x)
	})
	for _, a := range b.adding {
		u := &updates[a.x]
		e := bulkEnt{klen: uint32(1 + len(u.Key)), vlen: -1}
		if !u.IsRemoval() {
			e.vlen = int32(valueLen(u))
		}
		var dst []byte
		e.blk, e.off, dst = b.alloc(int(e.klen) + max(int(e.vlen), 0))
		dst[0] = dataPrefix
		copy(dst[1:], u.Key)
		if e.vlen >= 0 {
			putValue(dst[e.klen:], u)
		}
		b.ents = append(b.ents, e)
	}
	b.ends = append(b.ends, int32(len(b.ents)))
	return nil
}

// sorted merges the runs into the indexes of the buffered entries in key
// order, only the last entry of each key.
func (b *bulk) sorted() []int32 {
	h := b.heap[:0]
	start := int32(0)
	for _, end := range b.ends {
		if r := (bulkRun{pos: start, end: end}); b.head(&r) {
			h = append(h, r)
		}
		start = end
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(h, i)
	}
	o := b.order[:0]
	var last []byte
	for len(h) > 0 {
		if n := len(o); n > 0 && bytes.Equal(last, h[0].key) {
			o[n-1] = h[0].pos // a later update of the same key
		} else {
			o, last = append(o, h[0].pos), h[0].key
		}
		if h[0].pos++; !b.head(&h[0]) {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(h, 0)
	}
	b.order, b.heap = o, h
	return o
}

// prefix is the prefix every key held shares; the buffer holds one.
func (b *bulk) prefix() []byte { return b.key(0)[:b.shared] }

// reset empties the buffer, keeping its memory for the next updates.
func (b *bulk) reset() {
	b.used, b.size, b.shared, b.spilled = 0, 0, 0, nil
	b.ents, b.ends = b.ents[:0], b.ends[:0]
}

// maxSealed is the number of full buffers spilled at a time, each by its
// own goroutine, while the next fills.
const maxSealed = 2

// sealedBulk is a full buffer being spilled to a run. Its result comes on
// done, nil once received.
type sealedBulk struct {
	b    *bulk
	done chan error
}

// addBulk buffers updates. A buffer that fills up is sealed and spilled to
// a run by a goroutine while the next one fills. Its caller holds f.mu.
func (f *Fold) addBulk(ctx context.Context, updates []kvcore.Update) error {
	if f.bulk == nil {
		f.bulk, f.spare = f.spare, nil
		if f.bulk == nil {
			f.bulk = &bulk{}
		}
	}
	if err := f.bulk.add(updates); err != nil {
		return fmt.Errorf("pebblefold: apply: %w", err)
	}
	f.pending.Store(true)
	if f.bulk.size < f.opts.BulkBytes {
		return nil
	}
	if err := f.waitSealed(maxSealed - 1); err != nil {
		return err
	}
	// Runs and buffers spilling, the new one with them, are what the next
	// merge reads: at most maxRuns.
	if len(f.runs)+len(f.sealed) >= maxRuns {
		if err := f.mergeRuns(ctx, nil); err != nil {
			return err
		}
	}
	s, path := &sealedBulk{b: f.bulk, done: make(chan error, 1)}, f.runPath()
	f.sealed, f.bulk = append(f.sealed, s), nil
	go func() { s.done <- f.spill(s.b, path) }()
	return nil
}

// runPath names a new run.
func (f *Fold) runPath() string {
	f.runSeq++
	return f.opts.FS.PathJoin(f.dir, ingestDir, fmt.Sprintf("run%06d", f.runSeq))
}

// spill writes b to a run at path, kept in b.spilled.
func (f *Fold) spill(b *bulk, path string) error {
	fs := f.opts.FS
	// A run as large as the buffer, and room left for Pebble (see
	// reserveBytes): a disk filled by runs would fail its next flush.
	err := checkSpace(fs, f.dir, reserveBytes(f.opts)+int64(b.size))
	if err == nil {
		err = fs.MkdirAll(fs.PathJoin(f.dir, ingestDir), 0o755)
	}
	if err == nil {
		b.spilled, err = writeRun(fs, path, b)
	}
	if err != nil {
		fs.Remove(path)
		return fmt.Errorf("pebblefold: spilling %d buffered updates to %s: %w", len(b.ents), path, err)
	}
	return nil
}

// waitSealed waits for the spills of the oldest sealed buffers until at
// most left are being spilled, and adds their runs in the order sealed. A
// buffer whose spill failed is spilled again here, so that an error
// reports the file system as it is now; if that fails too, the buffer is
// kept for the next wait. Its caller holds f.mu.
func (f *Fold) waitSealed(left int) error {
	for len(f.sealed) > left {
		s := f.sealed[0]
		spilled := false
		if s.done != nil {
			spilled = <-s.done == nil
			s.done = nil
		}
		if !spilled {
			if err := f.spill(s.b, f.runPath()); err != nil {
				return err
			}
		}
		f.runs = append(f.runs, s.b.spilled)
		s.b.reset()
		f.spare = s.b
		f.sealed[0] = nil // the buffer is spare's, or garbage once spare is dropped
		f.sealed = f.sealed[1:]
	}
	return nil
}

// abandonSealed waits for the spills still running, once a flush failed
// at Close; the runs they leave are removed by the next Open. Its caller
// holds f.mu.
func (f *Fold) abandonSealed() {
	for _, s := range f.sealed {
		if s.done != nil {
			<-s.done
		}
	}
	f.sealed = nil
}

// flushBulk writes every buffered update to Pebble, in the order applied,
// and releases the buffers' memory. Its caller holds f.mu. Ingested tables
// are fsynced and the ingestion recorded in Pebble's fsynced manifest
// before it returns; a batch is not synced, and becomes durable with the
// next synced commit (the Apply that moves the cursor) or Close. On failure
// the updates are kept, to be written again.
func (f *Fold) flushBulk(ctx context.Context) error {
	if err := f.waitSealed(0); err != nil {
		return err
	}
	switch {
	case len(f.runs) > 0:
		if err := f.mergeRuns(ctx, f.bulk); err != nil {
			return err
		}
	case f.bulk != nil && len(f.bulk.ents) > 0:
		if err := f.writeBulk(ctx, f.bulk); err != nil {
			return err
		}
	}
	f.bulk, f.spare, f.sealed = nil, nil, nil
	f.pending.Store(false)
	return nil
}

// writeBulk writes b's updates to Pebble: ingested as tables when b is
// large, through a batch when it is small.
func (f *Fold) writeBulk(ctx context.Context, b *bulk) error {
	if b.size >= bulkIngestMin {
		return f.mergeRuns(ctx, b)
	}
	if err := f.commitBulk(b, b.sorted()); err != nil {
		return fmt.Errorf("pebblefold: writing %d buffered updates to %s: %w", len(b.ents), f.dir, err)
	}
	return nil
}

// commitBulk writes the entries of order through one unsynced batch.
func (f *Fold) commitBulk(b *bulk, order []int32) error {
	batch := f.db.NewBatch()
	defer batch.Close()
	for _, i := range order {
		var err error
		if b.ents[i].vlen < 0 {
			err = batch.Delete(b.key(i), nil)
		} else {
			err = batch.Set(b.key(i), b.value(i), nil)
		}
		if err != nil {
			return err
		}
	}
	if err := checkSpace(f.opts.FS, f.dir, reserveBytes(f.opts)+int64(len(batch.Repr()))); err != nil {
		return err
	}
	return batch.Commit(pebble.NoSync)
}
