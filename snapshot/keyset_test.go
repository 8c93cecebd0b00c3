package snapshot

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// arenaOf puts one entry per key into a fresh arena (after a first dummy
// byte, so that no entry is at reference 0) and returns their references.
func arenaOf(keys []string) (*arena, []ref) {
	ar := &arena{}
	ar.alloc(1)
	refs := make([]ref, len(keys))
	for i, k := range keys {
		u := put(k, fmt.Sprint(i), uint64(i+1))
		r, dst := ar.alloc(7 + len(k) + len(u.Value) + u.Version.Len())
		appendPutPayload(dst[:0], k, u.Value, u.Version)
		refs[i] = r
	}
	return ar, refs
}

// The keySet agrees with a map through puts, replacements and removals
// (whose backward shifts must keep every remaining key findable).
func TestKeySetMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 11))
	keys := make([]string, 30000)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", rng.IntN(3000))
	}
	ar, refs := arenaOf(keys)
	s := newKeySet(ar, 4)
	want := map[string]ref{}
	for i, k := range keys {
		if rng.IntN(3) == 0 {
			old, oldLen, ok := s.remove([]byte(k), s.hash([]byte(k)))
			if w, wok := want[k]; ok != wok || old != w || ok && oldLen != len(ar.payload(w)) {
				t.Fatalf("op %d: remove(%s) = %v, %v, want %v, %v", i, k, old, ok, w, wok)
			}
			delete(want, k)
			continue
		}
		old, oldLen, ok := s.put(refs[i], len(ar.payload(refs[i])))
		if w, wok := want[k]; ok != wok || old != w || ok && oldLen != len(ar.payload(w)) {
			t.Fatalf("op %d: put(%s) replaced %v, %v, want %v, %v", i, k, old, ok, w, wok)
		}
		want[k] = refs[i]
	}
	got := s.appendRefs(nil)
	if len(got) != len(want) || s.n != len(want) {
		t.Fatalf("%d entries (n=%d), want %d", len(got), s.n, len(want))
	}
	for _, r := range got {
		if want[string(ar.key(r))] != r {
			t.Fatalf("entry %s is stale", ar.key(r))
		}
	}
}

// sortByKey orders like bytes.Compare, for keys that agree on their first
// 16 bytes after the shared prefix, differ only by trailing zero bytes, or
// are shorter than 8 bytes.
func TestSortByKeyOrdersLikeBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 4))
	keys := []string{"p/", "p/\x00", "p/\x00\x00", "p/a", "p/a\x00", "p/a\x01", "p/\xff"}
	for range 2000 {
		k := []byte("p/")
		for range rng.IntN(40) {
			k = append(k, "\x00ab\xff"[rng.IntN(4)])
		}
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	ar, refs := arenaOf(keys)
	sortByKey(ar, refs, 2)
	for i := 1; i < len(refs); i++ {
		if a, b := ar.key(refs[i-1]), ar.key(refs[i]); bytes.Compare(a, b) >= 0 {
			t.Fatalf("%q sorted before %q", a, b)
		}
	}
}

// Enough entries to sort in two halves and merge them: the merge keeps
// every entry once, in key order, including keys that agree on their first
// 16 bytes after the shared prefix.
func TestSortByKeyMergesHalves(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	n := parallelSortFrom + 1000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("p/%016d/%d", rng.IntN(n/4), i)
	}
	ar, refs := arenaOf(keys)
	sortByKey(ar, refs, 2)
	slices.Sort(keys)
	for i, r := range refs {
		if got := string(ar.key(r)); got != keys[i] {
			t.Fatalf("entry %d is %q, want %q", i, got, keys[i])
		}
	}
}

// sortKeys orders like slices.Sort, with and without a shared prefix, for
// keys that agree on their first 16 bytes after it, past
// parallelSortFrom and below prefixSortFrom.
func TestSortKeysOrdersLikeSlicesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{10, prefixSortFrom + 5, parallelSortFrom + 5} {
		for _, prefix := range []string{"", "route.svc-"} {
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("%s%016d%s", prefix, rng.IntN(n/3+1), strings.Repeat("\x00", rng.IntN(3)))
			}
			keys = append(keys, prefix)
			want := slices.Sorted(slices.Values(keys))
			sortKeys(keys)
			if !slices.Equal(keys, want) {
				t.Fatalf("%d keys under %q: not in order", n, prefix)
			}
		}
	}
}
