//go:build !linux

package snapshot

// withHugePages returns s: huge page advice is for Linux only.
func withHugePages[T any](s []T) []T { return s }
