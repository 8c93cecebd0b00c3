//go:build !linux

package main

// adviseHugeHeapAtStart does nothing outside Linux (see hugeheap_linux.go).
func adviseHugeHeapAtStart() {}
