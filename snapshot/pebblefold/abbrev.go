package pebblefold

import "encoding/binary"

// Abbreviated keys: when every key a sort or merge compares starts with
// the same prefix, the 8 bytes after it, read as a big-endian integer,
// order two keys as they do unless equal. Comparing those integers first
// settles most comparisons without reading the keys (which are scattered
// over memory), and the keys are compared only on a tie.

// commonPrefix is the length of the prefix a and b share.
func commonPrefix[A, B ~string | ~[]byte](a A, b B) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// sharedLen is the length of the prefix all of prefixes share (0 for
// none).
func sharedLen(prefixes [][]byte) int {
	if len(prefixes) == 0 {
		return 0
	}
	n := len(prefixes[0])
	for _, p := range prefixes[1:] {
		n = commonPrefix(prefixes[0][:n], p)
	}
	return n
}

// abbreviate returns the 8 bytes of key after its first skip, zero-padded.
// A key that ends before them is padded with zeros, which sort first, as
// a key that is a prefix of another does.
func abbreviate[K ~string | ~[]byte](key K, skip int) uint64 {
	rest := key[skip:]
	if len(rest) >= 8 {
		return binary.BigEndian.Uint64([]byte(rest[:8]))
	}
	var a [8]byte
	copy(a[:], rest)
	return binary.BigEndian.Uint64(a[:])
}
