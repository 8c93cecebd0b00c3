package snapshot

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// While a merge runs in the background, lookups see the frozen changes
// under the newer ones, and every reader that needs the whole fold (count,
// a page, the next merge) installs it first: at every point the index
// holds what a map does.
func TestBackgroundMergeFoldsLikeAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	x := newIndex()
	want := map[string]string{}
	step := uint64(0)
	change := func(n int) {
		for range n {
			step++
			k := fmt.Sprintf("k%05d", rng.IntN(20_000))
			if rng.IntN(5) == 0 {
				x.apply(del(k, step))
				delete(want, k)
			} else {
				v := fmt.Sprint(step)
				x.apply(put(k, v, step))
				want[k] = v
			}
		}
	}
	check := func(round int) {
		for k := range 20_000 {
			key := fmt.Sprintf("k%05d", k)
			e, ok := x.get(key)
			if v, in := want[key]; ok != in || (ok && string(e.Value) != v) {
				t.Fatalf("round %d: get(%q) = %q, %v; want %q, %v", round, key, e.Value, ok, v, in)
			}
		}
	}
	for round := range 6 {
		change(3000)
		x.startMerge()
		if x.pending == nil {
			t.Fatal("no merge in the background")
		}
		change(2000) // over the frozen changes, and new ones
		check(round)
	}
	if n := x.count(); n != len(want) || x.pending != nil {
		t.Fatalf("count = %d (pending %v), want %d", n, x.pending != nil, len(want))
	}
	change(500)
	x.startMerge()
	x.sortedMemKeys()
	x.finishMerge() // as Range does before a page
	x.sortedMemKeys()
	page, _ := x.page(nil, "", "", true, len(want)+1)
	var got []string
	for _, e := range page {
		got = append(got, e.Key+"="+string(e.Value))
	}
	var exp []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		exp = append(exp, k+"="+want[k])
	}
	if !slices.Equal(got, exp) {
		t.Fatalf("a page after the merge holds %d entries, want %d", len(got), len(exp))
	}
}

// Close waits for the background work of a growing fold (a merge, the next
// arena chunk): nothing the fold started runs after it.
func TestCloseWaitsForBackgroundWork(t *testing.T) {
	l := openLog(t, newPath(t), Options{CompactThreshold: 1 << 40})
	val := strings.Repeat("v", 200)
	rev := uint64(0)
	for b := 0; ; b++ {
		batch := make([]kvcore.Update, 0, 1000)
		for i := range 1000 {
			rev++
			batch = append(batch, put(fmt.Sprintf("key-%08d", b*1000+i), val, rev))
		}
		apply(t, l, cur(rev), batch...)
		l.mu.Lock()
		started := l.idx.pending != nil && l.idx.ar.spare != nil
		l.mu.Unlock()
		if started {
			break
		}
		if b == 2000 {
			t.Fatal("no background merge in 2M keys")
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.idx.pending != nil || l.idx.ar.spare != nil {
		t.Errorf("after Close: merge pending %v, next chunk pending %v", l.idx.pending != nil, l.idx.ar.spare != nil)
	}
}

// A fold that stops growing keeps no spares for background merges, which
// only a growing fold runs.
func TestSparesGoOnceTheFoldStopsGrowing(t *testing.T) {
	x := newIndex()
	step := uint64(0)
	puts := func(from, n int, value string) {
		for i := range n {
			step++
			x.apply(put(fmt.Sprintf("k%06d", from+i), value, step))
		}
	}
	puts(0, 1000, "v")
	x.merge()
	puts(1000, 1000, "v")
	x.startMerge()
	x.finishMerge()
	if !x.growing || x.spare == nil {
		t.Fatalf("after adding keys: growing %v, spare map kept %v; want both", x.growing, x.spare != nil)
	}
	puts(0, 1000, "changed") // every key exists: the fold no longer grows
	x.startMerge()
	x.finishMerge()
	if x.growing || x.spare != nil || x.spareKeys != nil || x.spareNew != nil {
		t.Errorf("after changing keys: growing %v, spares kept %v %v %v", x.growing, x.spare != nil, x.spareKeys != nil, x.spareNew != nil)
	}
}
