//go:build !linux

package main

// adviseHugeHeap does nothing outside Linux (see hugeheap_linux.go).
func adviseHugeHeap() {}
