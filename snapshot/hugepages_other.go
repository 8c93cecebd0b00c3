//go:build !linux

package snapshot

// prefaulted returns s: the advice it gives is for Linux only.
func prefaulted[T any](s []T) []T { return s }

// withHugePages returns s: the advice it gives is for Linux only.
func withHugePages[T any](s []T) []T { return s }

// populate does nothing: the advice it gives is for Linux only.
func populate([]byte) {}
