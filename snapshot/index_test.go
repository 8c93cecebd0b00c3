package snapshot

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
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
