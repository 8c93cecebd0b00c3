package pebblefold

import (
	"strings"
	"testing"
)

// keySink keeps TestDataKeyAllocatesOnce's keys alive, so that the compiler
// cannot drop an allocation.
var keySink []byte

// dataKey, on every get and range, grows its buffer at most once: into a
// fresh buffer it makes one allocation, into a reused one none.
func TestDataKeyAllocatesOnce(t *testing.T) {
	key := strings.Repeat("k", 60)
	if n := testing.AllocsPerRun(100, func() { keySink = dataKey(nil, key) }); n != 1 {
		t.Errorf("dataKey into a nil buffer: %v allocations, want 1", n)
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = dataKey(buf, key) }); n != 0 {
		t.Errorf("dataKey into a buffer with room: %v allocations, want 0", n)
	}
}
