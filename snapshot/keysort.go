package snapshot

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
)

// sortByKey sorts refs by their entries' keys, all of which start with the
// same skip bytes. Comparing keys in the arena costs a cache miss per
// entry and comparison; instead each entry is sorted by the 16 key bytes
// after skip, held beside its reference, and only keys that agree on those
// are compared in the arena. It takes 24 bytes per entry while it runs.
func sortByKey(ar *arena, refs []ref, skip int) {
	type item struct {
		hi, lo uint64 // key bytes skip..skip+16, big-endian, zero-padded
		r      ref
	}
	items := withHugePages(make([]item, len(refs)))
	for i, r := range refs {
		k := ar.key(r)[skip:]
		items[i] = item{hi: paddedUint64(k), lo: paddedUint64(k[min(8, len(k)):]), r: r}
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := cmp.Compare(a.hi, b.hi); c != 0 {
			return c
		}
		if c := cmp.Compare(a.lo, b.lo); c != 0 {
			return c
		}
		// Equal or zero-padded alike: a key and its extension by zero
		// bytes, or keys longer than 16 bytes after skip.
		return bytes.Compare(ar.key(a.r), ar.key(b.r))
	})
	for i := range items {
		refs[i] = items[i].r
	}
}

// paddedUint64 is the big-endian value of b's first 8 bytes, padded with
// zeros, which orders like the bytes themselves.
func paddedUint64(b []byte) uint64 {
	var p [8]byte
	copy(p[:], b)
	return binary.BigEndian.Uint64(p[:])
}

// commonPrefixLen is the length of the longest common prefix of a and b.
func commonPrefixLen(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
