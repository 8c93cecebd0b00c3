package kvtest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Listings and state syncs while the bucket is written: a key that exists
// for the whole listing, or the whole initial state, is in it.

const (
	churnKeys   = 2000 // keys that exist throughout
	churnRounds = 4    // listings or state syncs while the writer runs
	hotKeys     = 3    // keys the writer updates again and again
)

// churn fills st with the keys "k.00000"… that exist throughout, then
// writes until the test ends: new keys, updates of the old ones (often
// ahead of a reader still on its way) and updates of a few hot keys.
func (s *suite) churn(t *testing.T, st kvcore.Store) (live []string) {
	t.Helper()
	for i := range churnKeys {
		live = append(live, fmt.Sprintf("k.%05d", i))
	}
	for i := range hotKeys {
		live = append(live, fmt.Sprintf("k.hot%d", i))
	}
	for _, k := range live {
		s.put(t, st, k, "v")
	}
	ctx, cancel := context.WithCancel(s.ctx(t))
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			// Errors only come from the end of the test.
			_, _ = st.Put(ctx, fmt.Sprintf("k.new.%d", i), []byte("n"))
			_, _ = st.Put(ctx, live[(i*7919)%churnKeys], []byte(fmt.Sprint(i)))
			_, _ = st.Put(ctx, fmt.Sprintf("k.hot%d", i%hotKeys), []byte(fmt.Sprint(i)))
		}
	})
	return live
}

// missing returns the keys of live not in got.
func missing(live []string, got map[string]bool) []string {
	var out []string
	for _, k := range live {
		if !got[k] {
			out = append(out, k)
		}
	}
	return out
}

func (s *suite) testScanUnderWrites(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{MaxBytes: -1})
	live := s.churn(t, st)
	ctx := s.ctx(t)
	for round := range churnRounds {
		keys, err := st.Keys(ctx, "k.")
		noErr(t, "keys", err)
		got := map[string]bool{}
		for _, k := range keys {
			got[k] = true
		}
		if m := missing(live, got); len(m) > 0 {
			t.Fatalf("round %d: Keys missed %d keys that exist throughout: %q", round, len(m), m)
		}
		entries, err := st.Scan(ctx, "k.")
		noErr(t, "scan", err)
		got = map[string]bool{}
		for _, e := range entries {
			got[e.Key] = true
		}
		if m := missing(live, got); len(m) > 0 {
			t.Fatalf("round %d: Scan missed %d keys that exist throughout: %q", round, len(m), m)
		}
	}
}

func (s *suite) testWatchStateSyncUnderWrites(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{MaxBytes: -1})
	live := s.churn(t, st)
	for round := range churnRounds {
		w, err := st.Watch(s.ctx(t), kvcore.Prefixes("k."), kvcore.Cursor{})
		noErr(t, "watch", err)
		r := &stream{t: t, w: w, wait: s.h.Wait}
		got := map[string]bool{}
		for _, u := range r.untilSynced() {
			got[u.Key] = true
		}
		w.Stop()
		if m := missing(live, got); len(m) > 0 {
			t.Fatalf("round %d: Synced came before %d keys that exist throughout: %q", round, len(m), m)
		}
	}
}
