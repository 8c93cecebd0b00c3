package snapshot

import (
	"errors"
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
	l.mapErr = errors.ErrUnsupported // entries are copied into the arena (see window)
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
	x := l.idx
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if x.pending != nil || x.ar.spare != nil {
		t.Errorf("after Close: merge pending %v, next chunk pending %v", x.pending != nil, x.ar.spare != nil)
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
	if !x.growing || x.spareNew == nil || x.spareMem == nil || x.abbr.of == nil {
		t.Fatalf("after adding keys: growing %v, spare slices kept %v, spare map kept %v, abbreviations kept %v; want all",
			x.growing, x.spareNew != nil, x.spareMem != nil, x.abbr.of != nil)
	}
	puts(0, 1000, "changed") // every key exists: the fold no longer grows
	x.startMerge()
	x.finishMerge()
	if x.growing || x.spareKeys != nil || x.spareNew != nil || x.spareMem != nil || x.abbr.of != nil {
		t.Errorf("after changing keys: growing %v, spares kept %v %v %v, abbreviations kept %v",
			x.growing, x.spareKeys != nil, x.spareNew != nil, x.spareMem != nil, x.abbr.of != nil)
	}
}

// A background merge, which compares abbreviated keys, builds the base that
// mergeInto does, merge after merge, with base's abbreviations right: for
// keys that agree on more than their 16 bytes after the shared prefix, keys
// that extend others by zero bytes, a first key that shrinks the shared
// prefix, deletes of keys in base and of keys nowhere, and changes of keys
// in base.
func TestGrowingMergeMatchesMergeInto(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 5))
	keys := []func() string{
		func() string { return fmt.Sprintf("app/%06d", rng.IntN(50_000)) },
		func() string { return fmt.Sprintf("app/svc-%03d/long-common-part-%04d", rng.IntN(50), rng.IntN(200)) },
		func() string { return "app/z" + strings.Repeat("\x00", rng.IntN(20)) },
		func() string { return fmt.Sprintf("app/%c", 'a'+rng.IntN(26)) },
	}
	x := newIndex()
	step := uint64(0)
	for round := range 40 {
		for range 1 + rng.IntN(3000) {
			step++
			k := keys[rng.IntN(len(keys))]()
			if round == 25 && step%100 == 0 {
				k = fmt.Sprintf("%c-elsewhere-%d", 'A'+rng.IntN(60), step) // the shared prefix shrinks
			}
			if rng.IntN(8) == 0 {
				x.apply(del(k, step))
			} else {
				x.apply(put(k, fmt.Sprint(step), step))
			}
		}
		base, ab, live, liveBytes := x.mergeGrowing()
		want, wantLive, wantBytes := x.mergeInto(nil)
		if !slices.Equal(base, want) || live != wantLive || liveBytes != wantBytes {
			t.Fatalf("round %d: %d refs, %d live, %d bytes; mergeInto gives %d, %d, %d", round, len(base), live, liveBytes, len(want), wantLive, wantBytes)
		}
		skip := len(x.ar.key(base[0]))
		for _, r := range base {
			skip = min(skip, commonPrefixLen(x.ar.key(base[0]), x.ar.key(r)))
		}
		if ab.skip > skip || len(ab.of) != len(base) {
			t.Fatalf("round %d: %d abbreviations after %d bytes for %d keys sharing %d", round, len(ab.of), ab.skip, len(base), skip)
		}
		for i, r := range base {
			if ab.of[i] != abbreviate(x.ar.key(r), ab.skip) {
				t.Fatalf("round %d: abbreviation %d is not its key's, %q", round, i, x.ar.key(r))
			}
		}
		x.base, x.abbr, x.live, x.liveBytes = base, ab, live, liveBytes
		clear(x.mem)
		x.memKeys, x.memNew = x.memKeys[:0], x.memNew[:0]
	}
}
