package snapshot

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sync"
	"unsafe"
)

// sortByKey sorts refs by their entries' keys, all of which start with the
// same skip bytes (see sortPrefixed).
func sortByKey(ar *arena, refs []ref, skip int) { sortPrefixed(refs, skip, ar.key) }

// sortKeys sorts keys as slices.Sort does: from prefixSortFrom keys on,
// by sortPrefixed (keys whose bytes are in the arena, such as mem's, would
// otherwise cost two cache misses a comparison).
func sortKeys(keys []string) {
	if len(keys) < prefixSortFrom {
		slices.Sort(keys)
		return
	}
	skip := len(keys[0])
	for _, k := range keys[1:] {
		skip = commonPrefixLen(keys[0][:skip], k)
	}
	sortPrefixed(keys, skip, stringBytes)
}

// prefixSortFrom is how many keys make sortKeys worth its items.
const prefixSortFrom = 1024

// stringBytes returns the bytes of s, which must not be modified.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// sortPrefixed sorts vs by their keys (key(v)), all of which start with
// the same skip bytes. Comparing keys in memory costs a cache miss per key
// and comparison; instead each value is sorted by its key's abbreviation,
// held beside it, and only keys that agree on those are compared in full.
// It takes 16 bytes per value beside a copy of it while it runs.
// From parallelSortFrom values on, each half is gathered and sorted on its
// own goroutine (a load has two cores and nothing else to do then) and the
// halves are merged into vs.
func sortPrefixed[T any](vs []T, skip int, key func(T) []byte) {
	items := prefaulted(make([]keyItem[T], len(vs)))
	if len(vs) < parallelSortFrom {
		sortItems(items, vs, skip, key)
		for i := range items {
			vs[i] = items[i].v
		}
		return
	}
	mid := len(vs) / 2
	var wg sync.WaitGroup
	wg.Go(func() { sortItems(items[:mid], vs[:mid], skip, key) })
	sortItems(items[mid:], vs[mid:], skip, key)
	wg.Wait()
	a, b := items[:mid], items[mid:]
	for i := range vs {
		if len(b) == 0 || len(a) > 0 && compareItems(key, &a[0], &b[0]) <= 0 {
			vs[i], a = a[0].v, a[1:]
		} else {
			vs[i], b = b[0].v, b[1:]
		}
	}
}

// parallelSortFrom is how many entries make sorting them on two
// goroutines worth its merge.
const parallelSortFrom = 64 << 10

// abbrev is a key's bytes skip..skip+16, big-endian and zero-padded, for
// keys that all start with the same skip bytes: two keys whose
// abbreviations differ compare as these do, without reading the keys
// (which, in the arena, costs a cache miss each). Equal abbreviations say
// nothing: a key and its extension by zero bytes, or keys that agree on
// their 16 bytes after skip.
type abbrev struct{ hi, lo uint64 }

// abbreviate returns the abbreviation of k, which is at least skip bytes long.
func abbreviate(k []byte, skip int) abbrev {
	k = k[skip:]
	return abbrev{hi: paddedUint64(k), lo: paddedUint64(k[min(8, len(k)):])}
}

// compare orders a and b as their keys, when they differ.
func (a abbrev) compare(b abbrev) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

// keyItem is a value's place in a sort: its key's abbreviation beside it.
type keyItem[T any] struct {
	abbrev
	v T
}

// sortItems fills items from vs and sorts them.
func sortItems[T any](items []keyItem[T], vs []T, skip int, key func(T) []byte) {
	for i, v := range vs {
		items[i] = keyItem[T]{abbrev: abbreviate(key(v), skip), v: v}
	}
	slices.SortFunc(items, func(a, b keyItem[T]) int { return compareItems(key, &a, &b) })
}

// compareItems orders items like their keys.
func compareItems[T any](key func(T) []byte, a, b *keyItem[T]) int {
	if c := a.compare(b.abbrev); c != 0 {
		return c
	}
	return bytes.Compare(key(a.v), key(b.v))
}

// paddedUint64 is the big-endian value of b's first 8 bytes, padded with
// zeros, which orders like the bytes themselves.
func paddedUint64(b []byte) uint64 {
	var p [8]byte
	copy(p[:], b)
	return binary.BigEndian.Uint64(p[:])
}

// commonPrefixLen is the length of the longest common prefix of a and b.
func commonPrefixLen[S ~string | ~[]byte](a, b S) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
