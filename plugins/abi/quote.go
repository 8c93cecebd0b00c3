package abi

import "strconv"

// MaxQuoteLen is how many bytes of a guest-supplied string (a name, a path,
// a key) an error message quotes. A guest controls the length of what it
// passes; an error must not grow with it.
const MaxQuoteLen = 256

// Quote returns s quoted like %q, cut to its first [MaxQuoteLen] bytes with
// a note of the full length. It copies at most MaxQuoteLen bytes of s, so it
// is safe on a slice aliasing guest memory.
func Quote[T string | []byte](s T) string {
	if len(s) <= MaxQuoteLen {
		return strconv.Quote(string(s))
	}
	return strconv.Quote(string(s[:MaxQuoteLen])) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}
