package snapshot

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"sync"
)

// sortByKey sorts refs by their entries' keys, all of which start with the
// same skip bytes. Comparing keys in the arena costs a cache miss per
// entry and comparison; instead each entry is sorted by the 16 key bytes
// after skip, held beside its reference, and only keys that agree on those
// are compared in the arena. It takes 24 bytes per entry while it runs.
// From parallelSortFrom entries on, each half is gathered and sorted on
// its own goroutine (a load has two cores and nothing else to do then) and
// the halves are merged into refs.
func sortByKey(ar *arena, refs []ref, skip int) {
	items := withHugePages(make([]keyItem, len(refs)))
	if len(refs) < parallelSortFrom {
		sortItems(ar, items, refs, skip)
		for i := range items {
			refs[i] = items[i].r
		}
		return
	}
	mid := len(refs) / 2
	var wg sync.WaitGroup
	wg.Go(func() { sortItems(ar, items[:mid], refs[:mid], skip) })
	sortItems(ar, items[mid:], refs[mid:], skip)
	wg.Wait()
	a, b := items[:mid], items[mid:]
	for i := range refs {
		if len(b) == 0 || len(a) > 0 && compareItems(ar, &a[0], &b[0]) <= 0 {
			refs[i], a = a[0].r, a[1:]
		} else {
			refs[i], b = b[0].r, b[1:]
		}
	}
}

// parallelSortFrom is how many entries make sorting them on two
// goroutines worth its merge.
const parallelSortFrom = 64 << 10

// keyItem is an entry's place in a sort: its key bytes skip..skip+16,
// big-endian and zero-padded, beside its reference.
type keyItem struct {
	hi, lo uint64
	r      ref
}

// sortItems fills items from refs and sorts them.
func sortItems(ar *arena, items []keyItem, refs []ref, skip int) {
	for i, r := range refs {
		k := ar.key(r)[skip:]
		items[i] = keyItem{hi: paddedUint64(k), lo: paddedUint64(k[min(8, len(k)):]), r: r}
	}
	slices.SortFunc(items, func(a, b keyItem) int { return compareItems(ar, &a, &b) })
}

// compareItems orders items like their keys.
func compareItems(ar *arena, a, b *keyItem) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lo, b.lo); c != 0 {
		return c
	}
	// Equal or zero-padded alike: a key and its extension by zero
	// bytes, or keys longer than 16 bytes after skip.
	return bytes.Compare(ar.key(a.r), ar.key(b.r))
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
