package snapshot

import (
	"math"
	"slices"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// replayed is the fold of a file image.
type replayed struct {
	idx       *index        // the entries; the image itself is arena chunk 0
	cursor    kvcore.Cursor // the last cursor record
	puts      int
	deletes   int
	cursors   int
	redundant bool // some record was overwritten, deleted, or a second cursor
	torn      bool // stopped at a torn tail or zero slack (not a clean EOF)
	end       int  // offset where decoding stopped
	size      int  // bytes in the image
	err       *FormatError
}

// compact reports whether the image is exactly its own compaction input:
// no redundant record and a clean end of file.
func (r *replayed) compact() bool { return !r.redundant && !r.torn }

// empty reports whether the image holds no usable snapshot.
func (r *replayed) empty() bool { return r.idx.live == 0 && r.cursor.IsNone() }

// replay folds the records of img. A file whose puts come in strictly
// ascending key order with no delete (every compacted file) is indexed
// without a hash table or any per-key allocation; any other is folded in a
// keySet (no per-key allocation either) and sorted at the end.
func replay(img []byte) *replayed {
	return replayParts(img, func(int) []byte { return img })
}

// replayFrom folds the records of the file r reads, decoding each part as
// soon as it is read. The caller checks r's error.
func replayFrom(r *imageReader) *replayed {
	img, _, _ := r.wait(headerLen - 1)
	return replayParts(img, func(n int) []byte {
		img, _, _ := r.wait(n)
		return img
	})
}

// replayParts folds the records of an image of which img is a prefix:
// more(n) returns a longer prefix than n bytes, or all of the image (n
// bytes long when img was all of it; more(math.MaxInt) waits for all). The index's arena is the image.
// The records are parsed and their CRCs checked on another goroutine
// (decodeAhead) while this one folds them.
func replayParts(img []byte, more func(n int) []byte) *replayed {
	f := &folder{res: &replayed{idx: newIndex()}}
	x := f.res.idx
	x.ar.chunks = [][]byte{img}
	x.ar.sealed = true
	f.sorted = withHugePages(make([]ref, 0, cap(img)/256))
	d, runs, done := decodeAhead(img, more)
	for run := range runs {
		x.ar.chunks[0] = run.img
		for i := range run.recs {
			f.fold(&run.recs[i])
		}
		select {
		case done <- run:
		default:
		}
	}
	res, sorted := f.res, f.sorted
	all := more(math.MaxInt) // after a refusal, the rest of the image too
	x.ar.chunks[0] = all
	res.torn, res.end, res.err, res.size = d.torn, d.pos, d.err, len(all)
	if f.byKey != nil {
		sorted = f.byKey.appendRefs(sorted[:0])
		sortByKey(&x.ar, sorted, f.shared)
	}
	if cap(sorted) > len(sorted)+len(sorted)/8 {
		sorted = slices.Clone(sorted) // drop append's slack: it would stay for the fold's life
	}
	x.base = sorted
	x.live = len(sorted)
	return res
}

// folder folds decoded records, in file order, into a replayed.
type folder struct {
	res     *replayed
	sorted  []ref   // the puts so far, while they come in ascending key order
	lastKey []byte  // the last of them
	byKey   *keySet // once keys arrive out of order or are deleted
	first   []byte  // the first key put, and
	shared  int     // how many bytes every key put shares with it
}

func (f *folder) fold(r *record) {
	res, x := f.res, f.res.idx
	switch r.typ {
	case recPut:
		res.puts++
		if res.puts == 1 {
			f.first, f.shared = r.key, len(r.key)
		} else if f.shared > 0 {
			f.shared = commonPrefixLen(f.first[:f.shared], r.key)
		}
		at := mkref(0, r.off+5)
		if f.byKey == nil && (len(f.sorted) == 0 || string(r.key) > string(f.lastKey)) {
			f.sorted = append(f.sorted, at)
			f.lastKey = r.key
			x.liveBytes += int64(len(r.payload))
			return
		}
		f.byKey = toKeySet(x, f.sorted, f.byKey)
		if _, oldLen, ok := f.byKey.put(at, len(r.payload)); ok {
			res.redundant = true
			x.liveBytes -= int64(oldLen)
		}
		x.liveBytes += int64(len(r.payload))
	case recDelete:
		res.deletes++
		res.redundant = true
		f.byKey = toKeySet(x, f.sorted, f.byKey)
		if _, oldLen, ok := f.byKey.remove(r.key); ok {
			x.liveBytes -= int64(oldLen)
		}
	case recCursor:
		res.cursors++
		if !res.cursor.IsNone() {
			res.redundant = true
		}
		res.cursor, _ = kvcore.CursorFromBytes(r.token) // the decoder bounds it to 10 bytes
	}
}

// toKeySet switches replay from the sorted fast path to a keySet.
func toKeySet(x *index, sorted []ref, s *keySet) *keySet {
	if s != nil {
		return s
	}
	s = newKeySet(&x.ar, max(len(sorted), 1024))
	for _, r := range sorted {
		s.put(r, len(x.ar.payload(r)))
	}
	return s
}
