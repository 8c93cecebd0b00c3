package pebblefold

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// With [Options.Bulk], a full buffer is not written to Pebble: it is
// sorted and spilled to a run file in ingestDir, and the runs are merged
// into one sorted set of tables, ingested in one step, only when the
// buffered updates must be written out (a read, the cursor moving, Sync,
// Close). A state sync into an empty fold therefore lands in Pebble's
// bottom level with no compaction to follow, where ingesting each buffer
// made a layer over the whole key space for compactions to merge again and
// again (at 10M keys most of a hydration's time). Runs are not fsynced: a
// crash loses them with the rest of what is past the stored cursor, and
// Open removes them.
const (
	// maxRuns bounds the runs kept and being spilled: a full buffer that
	// would make more has the runs merged into Pebble first. That bounds
	// the files a merge opens and its read buffers (runReadBuf per run and
	// key range: 32 MiB a range).
	maxRuns = 512
	// runWriteBuf and runReadBuf are the buffer sizes of a run's writer
	// and of each of its readers in a merge.
	runWriteBuf = 1 << 20
	runReadBuf  = 64 << 10
	// runMarkEvery: every runMarkEvery-th record of a run is marked (its
	// key and offset kept in memory), so that a merge can start reading a
	// run near any key.
	runMarkEvery = 1024
	// maxMergeParts bounds the key ranges a merge splits into, each merged
	// by its own goroutine.
	maxMergeParts = 4
	// runDeleted is the value length of a removal in a run file.
	runDeleted = math.MaxUint32
)

// A run file is a sequence of records in ascending key order, one per key:
// key length and value length (uint32, little endian; runDeleted for a
// removal), then the data key and the stored value.
const runHeader = 8

// run is a spilled buffer.
type run struct {
	path  string
	size  int64
	marks []runMark
	// prefix is the prefix all its keys share.
	prefix []byte
}

// runMark is a record of a run: its key and offset.
type runMark struct {
	key []byte
	off int64
}

// writeRun writes the entries of b in key order, the last update of each
// key, to a new run file at path.
func writeRun(fs vfs.FS, path string, b *bulk) (*run, error) {
	file, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	r := &run{path: path, prefix: bytes.Clone(b.prefix())}
	w := bufio.NewWriterSize(file, runWriteBuf)
	var hdr [runHeader]byte
	for n, i := range b.sorted() {
		key, vlen := b.key(i), uint32(runDeleted)
		if b.ents[i].vlen >= 0 {
			vlen = uint32(b.ents[i].vlen)
		}
		if n%runMarkEvery == 0 {
			r.marks = append(r.marks, runMark{key: bytes.Clone(key), off: r.size})
		}
		binary.LittleEndian.PutUint32(hdr[:4], uint32(len(key)))
		binary.LittleEndian.PutUint32(hdr[4:], vlen)
		w.Write(hdr[:])
		w.Write(key)
		r.size += runHeader + int64(len(key))
		if vlen != runDeleted {
			w.Write(b.value(i))
			r.size += int64(vlen)
		}
	}
	if err := w.Flush(); err != nil {
		file.Close()
		return nil, err
	}
	return r, file.Close()
}

// from returns the offset of the last marked record with a key at most
// lo: records before it sort below lo.
func (r *run) from(lo []byte) int64 {
	if lo == nil {
		return 0
	}
	j := sort.Search(len(r.marks), func(j int) bool { return bytes.Compare(r.marks[j].key, lo) > 0 })
	if j == 0 {
		return 0
	}
	return r.marks[j-1].off
}

// mergeSource is a sorted source of a merge, one entry per key.
type mergeSource interface {
	// next moves to the next entry, reporting false at the end.
	next() (bool, error)
	// entry is the current entry, valid until next.
	entry() (key, value []byte, del bool)
}

// runReader reads a run from an offset. A record that fits its buffer is
// read in place (Peek), and its bytes discarded at the next record; a
// larger one is copied into key and value.
type runReader struct {
	r          *bufio.Reader
	path       string
	key, value []byte
	del        bool
	held       int // bytes of the current record left in r's buffer
}

func (r *runReader) next() (bool, error) {
	if _, err := r.r.Discard(r.held); err != nil {
		return false, fmt.Errorf("reading run %s: %w", r.path, err)
	}
	r.held = 0
	hdr, err := r.r.Peek(runHeader)
	if len(hdr) == 0 && errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading run %s: %w", r.path, noEOF(err))
	}
	klen := int(binary.LittleEndian.Uint32(hdr[:4]))
	vlen := binary.LittleEndian.Uint32(hdr[4:])
	r.del = vlen == runDeleted
	if r.del {
		vlen = 0
	}
	n := runHeader + klen + int(vlen)
	if n <= r.r.Size() {
		rec, err := r.r.Peek(n)
		if err != nil {
			return false, fmt.Errorf("reading run %s: %w", r.path, noEOF(err))
		}
		r.key, r.value, r.held = rec[runHeader:runHeader+klen], rec[runHeader+klen:], n
		return true, nil
	}
	r.r.Discard(runHeader)
	r.key, r.value = make([]byte, klen), make([]byte, vlen)
	if _, err := io.ReadFull(r.r, r.key); err != nil {
		return false, fmt.Errorf("reading run %s: %w", r.path, noEOF(err))
	}
	if _, err := io.ReadFull(r.r, r.value); err != nil {
		return false, fmt.Errorf("reading run %s: %w", r.path, noEOF(err))
	}
	return true, nil
}

// noEOF turns the end of a run within a record into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (r *runReader) entry() ([]byte, []byte, bool) { return r.key, r.value, r.del }

// bulkReader reads the entries of a buffer in the order of its sorted
// indexes.
type bulkReader struct {
	b     *bulk
	order []int32
	at    int // the current entry is order[at-1]
}

func (r *bulkReader) next() (bool, error) {
	r.at++
	return r.at <= len(r.order), nil
}

func (r *bulkReader) entry() ([]byte, []byte, bool) {
	i := r.order[r.at-1]
	if r.b.ents[i].vlen < 0 {
		return r.b.key(i), nil, true
	}
	return r.b.key(i), r.b.value(i), false
}

// mergeHead is a source being merged and its current key, abbreviated to
// abbr; age orders sources by when their updates came.
type mergeHead struct {
	key  []byte
	abbr uint64
	age  int
	src  mergeSource
}

func (h *mergeHead) less(o *mergeHead) bool {
	if h.abbr != o.abbr {
		return h.abbr < o.abbr
	}
	if c := bytes.Compare(h.key, o.key); c != 0 {
		return c < 0
	}
	return h.age < o.age
}

// mergeHeap is a min-heap of sources by key, then age.
type mergeHeap []mergeHead

// superseded reports whether a newer source holds the key at the top: with
// sources ordered by key then age, it would be a child of the top.
func (h mergeHeap) superseded() bool {
	for _, c := range h[1:min(3, len(h))] {
		if bytes.Equal(c.key, h[0].key) {
			return true
		}
	}
	return false
}

// mergeRuns merges the runs and the buffer b (nil for none; newer than the
// runs) into tables, ingests them in one step, and removes the runs. The
// key space is split into ranges merged in parallel. On failure the runs
// and b are kept, to be merged again.
func (f *Fold) mergeRuns(ctx context.Context, b *bulk) error {
	fs := f.opts.FS
	// Tables as large as the runs and the buffer, and room left for Pebble
	// (see reserveBytes).
	need := reserveBytes(f.opts)
	for _, r := range f.runs {
		need += r.size
	}
	if b != nil {
		need += int64(b.size)
	}
	if err := checkSpace(fs, f.dir, need); err != nil {
		return fmt.Errorf("pebblefold: writing %d runs and buffered updates to %s: %w", len(f.runs), f.dir, err)
	}
	if err := fs.MkdirAll(fs.PathJoin(f.dir, ingestDir), 0o755); err != nil {
		return fmt.Errorf("pebblefold: writing buffered updates to %s: %w", f.dir, err)
	}
	files := make([]vfs.File, len(f.runs))
	merged := false
	defer func() {
		if !merged {
			closeAll(files)
		}
	}()
	for i, r := range f.runs {
		file, err := fs.Open(r.path)
		if err != nil {
			return fmt.Errorf("pebblefold: writing %d runs to %s: %w", len(f.runs), f.dir, err)
		}
		files[i] = file
	}
	var order []int32
	var prefixes [][]byte
	for _, r := range f.runs {
		prefixes = append(prefixes, r.prefix)
	}
	if b != nil && len(b.ents) > 0 {
		order = b.sorted()
		prefixes = append(prefixes, b.prefix())
	}
	skip := sharedLen(prefixes)
	bounds := f.splitKeys()
	parts := make([]*tables, len(bounds)+1)
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for p := range parts {
		var lo, hi []byte
		if p > 0 {
			lo = bounds[p-1]
		}
		if p < len(bounds) {
			hi = bounds[p]
		}
		parts[p] = f.newTables(fmt.Sprintf("part%d-", p))
		wg.Go(func() { errs[p] = f.mergePart(files, b, order, skip, lo, hi, parts[p]) })
	}
	wg.Wait()
	var paths []string
	for _, t := range parts {
		paths = append(paths, t.paths...)
	}
	defer func() {
		for _, p := range paths {
			fs.Remove(p) // Pebble linked (or copied) what it ingested
		}
	}()
	err := errors.Join(errs...)
	if err == nil && len(paths) > 0 {
		// The tables are linked in; the manifest records them.
		err = checkSpace(fs, f.dir, reserveBytes(f.opts))
	}
	if err == nil && len(paths) > 0 {
		err = f.db.Ingest(ctx, paths)
	}
	if err != nil {
		buffered := 0
		if b != nil {
			buffered = len(b.ents)
		}
		return fmt.Errorf("pebblefold: writing %d runs and %d buffered updates to %s: %w", len(f.runs), buffered, f.dir, err)
	}
	for _, r := range f.runs {
		fs.Remove(r.path) // merged; Open removes one left behind
	}
	// Closing the last handle of a removed run frees its blocks, which a
	// file system mounted with discard (as on this project's VMs) trims
	// then: 2 s for the runs of a 10M-key hydration, most of them written
	// back by then. The caller need not wait for that; Close does.
	merged = true
	f.releasing.Go(func() { closeAll(files) })
	clear(f.runs)
	f.runs = f.runs[:0]
	return nil
}

// closeAll closes the files that are open.
func closeAll(files []vfs.File) {
	for _, file := range files {
		if file != nil {
			file.Close()
		}
	}
}

// splitKeys returns the keys that split the runs into ranges of about
// equal size, one per processor: the marks of the largest run, which has
// as random a sample of the keys as any.
func (f *Fold) splitKeys() [][]byte {
	var largest *run
	for _, r := range f.runs {
		if largest == nil || r.size > largest.size {
			largest = r
		}
	}
	n := min(runtime.GOMAXPROCS(0), maxMergeParts)
	if largest == nil || len(largest.marks) < 2*n {
		return nil
	}
	bounds := make([][]byte, 0, n-1)
	for p := 1; p < n; p++ {
		bounds = append(bounds, largest.marks[p*len(largest.marks)/n].key)
	}
	return bounds
}

// mergePart merges the entries with keys in [lo, hi) (nil: unbounded) of
// the runs, read from files, and of the buffer b in the order of its sorted
// indexes order, into t: the newest update of each key. All their keys
// share their first skip bytes.
func (f *Fold) mergePart(files []vfs.File, b *bulk, order []int32, skip int, lo, hi []byte, t *tables) (err error) {
	defer func() {
		if err == nil {
			err = t.finish()
		} else {
			t.abandon()
		}
	}()
	var srcs []mergeSource
	for i, r := range f.runs {
		off := r.from(lo)
		srcs = append(srcs, &runReader{r: bufio.NewReaderSize(io.NewSectionReader(files[i], off, r.size-off), runReadBuf), path: r.path})
	}
	if b != nil && len(b.ents) > 0 {
		start := sort.Search(len(order), func(j int) bool { return lo == nil || bytes.Compare(b.key(order[j]), lo) >= 0 })
		end := sort.Search(len(order), func(j int) bool { return hi != nil && bytes.Compare(b.key(order[j]), hi) >= 0 })
		srcs = append(srcs, &bulkReader{b: b, order: order[start:end]})
	}
	// advance moves s to its next key in [lo, hi), reporting false past hi
	// or at its end.
	advance := func(s mergeSource) ([]byte, bool, error) {
		for {
			ok, err := s.next()
			if !ok || err != nil {
				return nil, false, err
			}
			key, _, _ := s.entry()
			if lo != nil && bytes.Compare(key, lo) < 0 {
				continue
			}
			return key, hi == nil || bytes.Compare(key, hi) < 0, nil
		}
	}
	h := make(mergeHeap, 0, len(srcs))
	for age, s := range srcs {
		key, ok, err := advance(s)
		if err != nil {
			return err
		}
		if ok {
			h = append(h, mergeHead{key: key, abbr: abbreviate(key, skip), age: age, src: s})
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(h, i)
	}
	for len(h) > 0 {
		if !h.superseded() {
			key, value, del := h[0].src.entry()
			if err := t.add(key, value, del); err != nil {
				return err
			}
		}
		key, ok, err := advance(h[0].src)
		if err != nil {
			return err
		}
		if ok {
			h[0].key, h[0].abbr = key, abbreviate(key, skip)
		} else {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(h, 0)
	}
	return nil
}
