package snapshot

import (
	"bytes"
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
	err       *FormatError
}

// compact reports whether the image is exactly its own compaction input:
// no redundant record and a clean end of file.
func (r *replayed) compact() bool { return !r.redundant && !r.torn }

// empty reports whether the image holds no usable snapshot.
func (r *replayed) empty() bool { return r.idx.live == 0 && r.cursor.IsNone() }

// replay folds the records of img. A file whose puts come in strictly
// ascending key order with no delete (every compacted file) is indexed
// without a map or any per-key allocation.
func replay(img []byte) *replayed {
	res := &replayed{idx: newIndex()}
	x := res.idx
	x.ar.chunks = [][]byte{img}
	x.ar.sealed = true
	var (
		sorted  []ref
		lastKey []byte
		byKey   map[string]ref // once keys arrive out of order or are deleted
		r       record
	)
	sorted = make([]ref, 0, len(img)/256)
	d := newDecoder(img)
	for d.next(&r) {
		switch r.typ {
		case recPut:
			res.puts++
			if byKey == nil && (len(sorted) == 0 || string(r.key) > string(lastKey)) {
				sorted = append(sorted, mkref(0, r.off+5))
				lastKey = r.key
				x.liveBytes += int64(len(r.payload))
				continue
			}
			byKey = toMap(x, sorted, byKey)
			if old, ok := byKey[string(r.key)]; ok {
				res.redundant = true
				x.liveBytes -= int64(len(x.ar.payload(old)))
			}
			byKey[string(r.key)] = mkref(0, r.off+5)
			x.liveBytes += int64(len(r.payload))
		case recDelete:
			res.deletes++
			res.redundant = true
			byKey = toMap(x, sorted, byKey)
			if old, ok := byKey[string(r.key)]; ok {
				x.liveBytes -= int64(len(x.ar.payload(old)))
				delete(byKey, string(r.key))
			}
		case recCursor:
			res.cursors++
			if !res.cursor.IsNone() {
				res.redundant = true
			}
			res.cursor, _ = kvcore.CursorFromBytes(r.token) // the decoder bounds it to 10 bytes
		}
	}
	res.torn, res.end, res.err = d.torn, d.pos, d.err
	if byKey != nil {
		sorted = sorted[:0]
		for _, ref := range byKey {
			sorted = append(sorted, ref)
		}
		slices.SortFunc(sorted, func(a, b ref) int { return bytes.Compare(x.ar.key(a), x.ar.key(b)) })
	}
	if cap(sorted) > len(sorted)+len(sorted)/8 {
		sorted = slices.Clone(sorted) // drop append's slack: it would stay for the fold's life
	}
	x.base = sorted
	x.live = len(sorted)
	return res
}

// toMap switches replay from the sorted fast path to a map keyed by key.
func toMap(x *index, sorted []ref, m map[string]ref) map[string]ref {
	if m != nil {
		return m
	}
	m = make(map[string]ref, len(sorted))
	for _, r := range sorted {
		m[string(x.ar.key(r))] = r
	}
	return m
}
