package kvcore_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/memkv"
)

// checkEmptyValueIsLive puts an empty value, syncs, and restarts the loop
// from its cursor, which reconciles the fold with the bucket's listing
// (and a short Reconcile makes it do so again and again): the key must stay
// in the fold, and no delete of it may reach apply.
func checkEmptyValueIsLive(t *testing.T, s kvcore.Store, fold kvcore.Fold) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.Put(ctx, "full", []byte("1")); err != nil {
		t.Fatal(err)
	}
	v, err := s.Put(ctx, "empty", nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var deleted []string
	apply := func(_ context.Context, b kvcore.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		for _, u := range b.Updates {
			if u.IsRemoval() {
				deleted = append(deleted, u.Key)
			}
		}
		return nil
	}
	want := []string{"empty=", "full=1"}
	stop := loop(t, s, fold, kvcore.AppliedConfig{}, apply)
	waitFor(t, "the sync", func() bool { return fold.Cursor() == kvcore.CursorAt(v) })
	stop()
	if got := foldState(t, fold, ""); !slices.Equal(got, want) {
		t.Fatalf("fold after the sync = %v, want %v", got, want)
	}

	var pmu sync.Mutex
	caughtUp := 0
	stop = loop(t, s, fold, kvcore.AppliedConfig{Reconcile: time.Millisecond, OnProgress: func(p kvcore.Progress) {
		pmu.Lock()
		defer pmu.Unlock()
		if p.Synced {
			caughtUp++
		}
	}}, apply)
	waitFor(t, "the resumed loop to catch up and reconcile a few times", func() bool {
		pmu.Lock()
		defer pmu.Unlock()
		return caughtUp > 0
	})
	time.Sleep(50 * time.Millisecond) // periodic reconciliations
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := foldState(t, fold, ""); !slices.Equal(got, want) {
		t.Errorf("fold after reconciling = %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(deleted) > 0 {
		t.Errorf("apply saw deletes of %v, live keys with empty values", deleted)
	}
}

func TestEmptyValueIsLiveOnMemKV(t *testing.T) {
	s, err := memkv.New().Store(t.Context(), kvcore.StoreConfig{Bucket: "app"})
	if err != nil {
		t.Fatal(err)
	}
	checkEmptyValueIsLive(t, s, newMemFold())
}

func TestEmptyValueIsLiveOnNATS(t *testing.T) {
	b := newNATSBucket(t, kvcore.StoreConfig{Bucket: "app"})
	checkEmptyValueIsLive(t, b.store, openLog(t, filepath.Join(t.TempDir(), "fold.snap")))
}
