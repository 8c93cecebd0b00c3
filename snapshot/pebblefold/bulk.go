package pebblefold

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// With [Options.Bulk], the updates of Applies that leave the cursor where
// it is are held in a bulk buffer and written to Pebble together: as a
// sorted run of sstables ingested in one step when the buffer is large,
// through one unsynced batch when it is small. Either way they skip the
// write-ahead log's fsync and, when ingested, the memtable's skiplist,
// which cost most of a hydration's time.
const (
	// bulkMaxBytes: a buffer of this many key and value bytes is written
	// out before the Apply that filled it returns. Each run becomes a layer
	// of tables over the whole key space (an L0 sublevel) until compactions
	// merge it down, so larger runs mean less rewriting and more memory.
	bulkMaxBytes = 64 << 20
	// bulkIngestMin: a smaller buffer goes through a batch, which costs
	// less than writing, syncing and ingesting tables.
	bulkIngestMin = 1 << 20
	// ingestFileSize: a run is cut into tables of about this size, so that
	// compactions can take it in pieces.
	ingestFileSize = l0TargetFileSize
	// ingestDir is the directory in the fold's directory that holds the
	// tables of a run until Pebble has ingested them.
	ingestDir = "ingest"
)

// bulk is the buffer of updates not yet written to Pebble.
type bulk struct {
	arena []byte    // each entry's data key, then its stored value
	ents  []bulkEnt // in the order the updates came
	order []int32   // flush's scratch: indexes of ents in key order
}

type bulkEnt struct {
	off  uint32 // of the data key in arena
	klen uint32
	vlen int32 // -1 for a removal
}

func (b *bulk) key(i int32) []byte {
	e := b.ents[i]
	return b.arena[e.off : e.off+e.klen]
}

func (b *bulk) value(i int32) []byte {
	e := b.ents[i]
	at := e.off + e.klen
	return b.arena[at : at+uint32(e.vlen)]
}

// add appends updates, or none of them when one is invalid.
func (b *bulk) add(updates []kvcore.Update) error {
	for i := range updates {
		if err := checkUpdate(&updates[i]); err != nil {
			return err
		}
	}
	for i := range updates {
		u := &updates[i]
		e := bulkEnt{off: uint32(len(b.arena)), klen: uint32(1 + len(u.Key)), vlen: -1}
		b.arena = append(append(b.arena, dataPrefix), u.Key...)
		if !u.IsRemoval() {
			e.vlen = int32(valueLen(u))
			b.arena = slices.Grow(b.arena, int(e.vlen))
			n := len(b.arena)
			b.arena = b.arena[:n+int(e.vlen)]
			putValue(b.arena[n:], u)
		}
		b.ents = append(b.ents, e)
	}
	return nil
}

// sorted returns the indexes of the buffered entries in key order, only
// the last entry of each key.
func (b *bulk) sorted() []int32 {
	o := b.order[:0]
	for i := range b.ents {
		o = append(o, int32(i))
	}
	slices.SortFunc(o, func(x, y int32) int {
		if c := bytes.Compare(b.key(x), b.key(y)); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
	w := 0
	for i, x := range o {
		if i+1 < len(o) && bytes.Equal(b.key(x), b.key(o[i+1])) {
			continue // a later update of the key follows
		}
		o[w] = x
		w++
	}
	b.order = o
	return o[:w]
}

func (b *bulk) reset() {
	b.arena, b.ents = b.arena[:0], b.ents[:0]
}

// flushBulk writes the bulk buffer to Pebble. Its caller holds f.mu.
// Ingested tables are fsynced and the ingestion recorded in Pebble's
// fsynced manifest before it returns; a batch is not synced, and becomes
// durable with the next synced commit (the Apply that moves the cursor) or
// Close. On failure the buffer is kept, to be written again.
func (f *Fold) flushBulk(ctx context.Context) error {
	b := &f.bulk
	if len(b.ents) == 0 {
		return nil
	}
	order := b.sorted()
	var err error
	if len(b.arena) < bulkIngestMin {
		err = f.commitBulk(order)
	} else {
		err = f.ingestBulk(ctx, order)
	}
	if err != nil {
		return fmt.Errorf("pebblefold: writing %d buffered updates to %s: %w", len(b.ents), f.dir, err)
	}
	b.reset()
	f.pending.Store(false)
	return nil
}

// commitBulk writes the entries of order through one unsynced batch.
func (f *Fold) commitBulk(order []int32) error {
	b := &f.bulk
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
	return batch.Commit(pebble.NoSync)
}

// ingestBulk writes the entries of order into tables of about
// ingestFileSize under ingestDir (each fsynced when closed) and ingests
// them in one step.
func (f *Fold) ingestBulk(ctx context.Context, order []int32) error {
	fs := f.opts.FS
	dir := fs.PathJoin(f.dir, ingestDir)
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var paths []string
	defer func() {
		for _, p := range paths {
			fs.Remove(p) // Pebble linked (or copied) what it ingested
		}
	}()
	wopts := f.po.MakeWriterOptions(0, f.db.TableFormat())
	b := &f.bulk
	var w *sstable.Writer
	for _, i := range order {
		if w == nil {
			p := fs.PathJoin(dir, fmt.Sprintf("%06d.sst", len(paths)))
			file, err := fs.Create(p, vfs.WriteCategoryUnspecified)
			if err != nil {
				return err
			}
			paths = append(paths, p)
			w = sstable.NewWriter(objstorageprovider.NewFileWritable(file), wopts)
		}
		var err error
		if b.ents[i].vlen < 0 {
			err = w.Delete(b.key(i))
		} else {
			err = w.Set(b.key(i), b.value(i))
		}
		if err == nil && w.Raw().EstimatedSize() >= ingestFileSize {
			err, w = w.Close(), nil
		}
		if err != nil {
			if w != nil {
				w.Close()
			}
			return err
		}
	}
	if w != nil {
		if err := w.Close(); err != nil {
			return err
		}
	}
	return f.db.Ingest(ctx, paths)
}
