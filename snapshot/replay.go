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

// replayGroup is how many records replay decodes before it folds them:
// their keySet lookups are prefetched together (see keySet.prefetch).
const replayGroup = 32

// replayParts folds the records of an image of which img is a prefix:
// more(n) returns a longer prefix than n bytes, or all of the image (n
// bytes long when img was all of it; more(math.MaxInt) waits for all). The index's arena is the image.
func replayParts(img []byte, more func(n int) []byte) *replayed {
	res := &replayed{idx: newIndex()}
	x := res.idx
	x.ar.chunks = [][]byte{img}
	x.ar.sealed = true
	var (
		sorted  []ref
		lastKey []byte
		byKey   *keySet // once keys arrive out of order or are deleted
		group   [replayGroup]record
		hashes  [replayGroup]uint32 // of group's keys, once byKey exists
		first   []byte              // the first key put, and
		shared  int                 // how many bytes every key put shares with it
	)
	sorted = prefaulted(make([]ref, 0, cap(img)/256))
	d := newDecoder(img)
	for {
		n := 0
		for n < len(group) && d.next(&group[n]) {
			n++
		}
		if n == 0 {
			// Stopped: refused, or at the end of the bytes read so far,
			// which is the end of the image unless more come.
			if d.err != nil {
				break
			}
			next := more(len(d.buf))
			if len(next) == len(d.buf) {
				break
			}
			d.buf, d.torn, x.ar.chunks[0] = next, false, next
			continue
		}
		hashed := byKey != nil
		if hashed {
			byKey.prefetch(group[:n], hashes[:n])
		}
		for i := range group[:n] {
			r := &group[i]
			switch r.typ {
			case recPut:
				res.puts++
				if res.puts == 1 {
					first, shared = r.key, len(r.key)
				} else if shared > 0 {
					shared = commonPrefixLen(first[:shared], r.key)
				}
				at := mkref(0, r.off+5)
				if byKey == nil && (len(sorted) == 0 || string(r.key) > string(lastKey)) {
					sorted = append(sorted, at)
					lastKey = r.key
					x.liveBytes += int64(len(r.payload))
					continue
				}
				byKey = toKeySet(x, sorted, byKey)
				if !hashed {
					hashes[i] = byKey.hash(r.key)
				}
				if _, oldLen, ok := byKey.putHashed(at, r.key, hashes[i], len(r.payload)); ok {
					res.redundant = true
					x.liveBytes -= int64(oldLen)
				}
				x.liveBytes += int64(len(r.payload))
			case recDelete:
				res.deletes++
				res.redundant = true
				byKey = toKeySet(x, sorted, byKey)
				if !hashed {
					hashes[i] = byKey.hash(r.key)
				}
				if _, oldLen, ok := byKey.remove(r.key, hashes[i]); ok {
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
	}
	all := more(math.MaxInt) // after a refusal, the rest of the image too
	x.ar.chunks[0] = all
	res.torn, res.end, res.err, res.size = d.torn, d.pos, d.err, len(all)
	if byKey != nil {
		sorted = byKey.appendRefs(sorted[:0])
		sortByKey(&x.ar, sorted, shared)
	}
	if cap(sorted) > len(sorted)+len(sorted)/8 {
		sorted = slices.Clone(sorted) // drop append's slack: it would stay for the fold's life
	}
	x.base = sorted
	x.live = len(sorted)
	return res
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
