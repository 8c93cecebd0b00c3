package snapshot

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// The sorted view of mem is brought up to date incrementally (new keys are
// sorted and merged in); at every point it equals a full sort of mem's keys.
func TestSortedMemKeysIncremental(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	x := newIndex()
	for step := range 5000 {
		k := fmt.Sprintf("k%03d", rng.IntN(700))
		if rng.IntN(4) == 0 {
			x.apply(del(k, uint64(step)))
		} else {
			x.apply(put(k, "v", uint64(step)))
		}
		if rng.IntN(10) == 0 {
			got, want := x.sortedMemKeys(), slices.Sorted(maps.Keys(x.mem))
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: sorted view %q, want %q", step, got, want)
			}
			if x.memKeysStale() {
				t.Fatal("stale right after sortedMemKeys")
			}
		}
		if rng.IntN(1000) == 0 {
			x.merge()
		}
	}
}

// Merging mem into base (with the galloping search) gives the same fold as
// a map, for changes spread over base, clustered, and past both its ends.
func TestIndexMergeMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	x := newIndex()
	want := map[string]string{}
	for step := range 20000 {
		var k string
		switch rng.IntN(3) {
		case 0:
			k = fmt.Sprintf("k%05d", rng.IntN(5000))
		case 1:
			k = fmt.Sprintf("k%05d", 2500+rng.IntN(20)) // clustered
		default:
			k = fmt.Sprintf("%c%03d", "az"[rng.IntN(2)], rng.IntN(100)) // before and after every k key
		}
		if rng.IntN(5) == 0 {
			x.apply(del(k, uint64(step)))
			delete(want, k)
		} else {
			v := fmt.Sprint(step)
			x.apply(put(k, v, uint64(step)))
			want[k] = v
		}
		if rng.IntN(500) == 0 {
			x.merge()
			if len(x.mem) != 0 || x.live != len(want) {
				t.Fatalf("step %d: %d in mem, %d live after merge, want 0 and %d", step, len(x.mem), x.live, len(want))
			}
			for i, r := range x.base {
				e := payloadEntry(x.ar.payload(r))
				if want[e.Key] != string(e.Value) || (i > 0 && string(x.ar.key(x.base[i-1])) >= e.Key) {
					t.Fatalf("step %d: base[%d] = %s=%s", step, i, e.Key, e.Value)
				}
			}
		}
	}
}

// gallop finds what a binary search finds, whatever step the caller
// guessed: keys before, between, on and after base's, steps from 0 to past
// its end.
func TestGallopAnyStep(t *testing.T) {
	x := newIndex()
	for i := range 100 {
		x.apply(put(fmt.Sprintf("k%03d", 2*i), "v", uint64(i+1)))
	}
	x.merge()
	for i := -1; i <= 201; i++ {
		k := fmt.Sprintf("k%03d", i)
		for from := 0; from < len(x.base); from += 7 {
			want := x.searchBase(x.base[from:], k)
			for step := range 120 {
				if got := x.gallop(x.base[from:], k, step); got != want {
					t.Fatalf("gallop(base[%d:], %q, %d) = %d, want %d", from, k, step, got, want)
				}
			}
		}
	}
}

// mem keeps no caller's key for a put: its key is a view of the entry's
// bytes in the arena (a caller's key can be a slice of a large message).
func TestMemKeysLiveInTheArena(t *testing.T) {
	x := newIndex()
	inArena := func(k string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(k)))
		for _, c := range x.ar.chunks {
			start := uintptr(unsafe.Pointer(unsafe.SliceData(c)))
			if p >= start && p < start+uintptr(cap(c)) {
				return true
			}
		}
		return false
	}
	for i := range 100 {
		msg := fmt.Sprintf("$KV.bucket.key%03d", i%40) // the key is a part of it
		x.apply(put(msg[len("$KV.bucket."):], "v", uint64(i+1)))
	}
	x.apply(del("key007", 101))
	x.apply(put("key007", "again", 102))
	for _, keys := range [][]string{slices.Collect(maps.Keys(x.mem)), x.memNew, x.sortedMemKeys()} {
		for _, k := range keys {
			if !inArena(k) {
				t.Fatalf("mem holds key %q outside the arena", k)
			}
		}
	}
}

// A fold that grew at its last merge merges at a quarter of base; one whose
// keys were changed, at a sixteenth.
func TestMergeThresholdFollowsGrowth(t *testing.T) {
	x := newIndex()
	for i := range 128_000 {
		x.apply(put(fmt.Sprintf("k%07d", i), "v", uint64(i+1)))
	}
	x.merge()
	if got := x.mergeThreshold(); got != 32_000 {
		t.Fatalf("after growing to 128000 keys: threshold %d, want 32000", got)
	}
	for i := range 20_000 {
		x.apply(put(fmt.Sprintf("k%07d", i*3), "w", uint64(200_000+i)))
	}
	x.merge()
	if got := x.mergeThreshold(); got != 8_000 {
		t.Fatalf("after changing 20000 of 128000 keys: threshold %d, want 8000", got)
	}
}

// A large fold's arena takes its full-size chunks from the spare faulted
// in ahead of need, and keeps every entry where it put it.
func TestArenaFillsFullChunksFromItsSpare(t *testing.T) {
	var a arena
	var refs []ref
	entry := make([]byte, 100<<10)
	for i := range 3 * chunkSize / len(entry) {
		r, dst := a.alloc(len(entry))
		for j := range dst {
			dst[j] = byte(i)
		}
		refs = append(refs, r)
	}
	if a.spare == nil {
		t.Fatal("no spare chunk after filling full-size chunks")
	}
	for i, r := range refs {
		c := a.chunks[r>>refOffBits]
		off := int(r & (1<<refOffBits - 1))
		if b := c[off : off+len(entry)]; b[0] != byte(i) || b[len(b)-1] != byte(i) {
			t.Fatalf("entry %d reads %d", i, b[0])
		}
	}
	if c := <-a.spare; cap(c) != chunkSize || len(c) != 0 {
		t.Fatalf("spare chunk has len %d, cap %d", len(c), cap(c))
	}
}
