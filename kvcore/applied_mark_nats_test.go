package kvcore_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// listingCounter counts a NATS store's key listings, keeping its identity
// and its mark visible to WatchApplied.
type listingCounter struct {
	kvcore.Store
	listings atomic.Int32
}

func (c *listingCounter) Keys(ctx context.Context, prefix string) ([]string, error) {
	c.listings.Add(1)
	return c.Store.Keys(ctx, prefix)
}

func (c *listingCounter) BucketMark(ctx context.Context) (string, kvcore.Cursor, error) {
	return c.Store.(kvcore.BucketMarker).BucketMark(ctx)
}

// markRun runs WatchApplied over src and fold from a recorded mark until
// it has caught up, and returns the mark it recorded then.
func markRun(t *testing.T, src kvcore.Source, fold kvcore.Fold, mark string) string {
	t.Helper()
	var mu sync.Mutex
	synced := false
	stop := loop(t, src, fold, kvcore.AppliedConfig{
		Mark:       mark,
		OnMark:     func(_ context.Context, m string) error { mu.Lock(); mark = m; mu.Unlock(); return nil },
		OnProgress: func(p kvcore.Progress) { mu.Lock(); synced = synced || p.Synced; mu.Unlock() },
	}, func(context.Context, kvcore.Batch) error { return nil })
	waitFor(t, "the loop to catch up", func() bool { mu.Lock(); defer mu.Unlock(); return synced })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return mark
}

// A restart over a fold that matches an unchanged bucket skips the key
// listing of its reconciliation; one over a bucket that lost a record
// while it was away (here the last one, purged from the stream, which
// leaves its first and last sequences as they were) lists and removes it.
func TestReconcileSkipsTheListingOfAnUnchangedBucketOnly(t *testing.T) {
	b := newNATSBucket(t, kvcore.StoreConfig{Bucket: "marked"})
	b.put(t, "a", "1")
	last := b.put(t, "b", "2")
	src := &listingCounter{Store: b.store}
	path := filepath.Join(t.TempDir(), "fold.snap")

	fold := openLog(t, path)
	mark := markRun(t, src, fold, "")
	if mark == "" || fold.Cursor() != kvcore.RevisionCursor(last) {
		t.Fatalf("after the sync: mark %q, cursor %v; want a mark and cursor %d", mark, fold.Cursor(), last)
	}
	fold.Close()

	fold = openLog(t, path)
	if got := markRun(t, src, fold, mark); got != mark {
		t.Errorf("the mark changed from %q to %q over an unchanged bucket", mark, got)
	}
	if n := src.listings.Load(); n != 0 {
		t.Errorf("the restart over an unchanged bucket listed its keys %d times, want none", n)
	}
	fold.Close()

	b.purgeMarker(t, "b") // removes b's record, adding none
	fold = openLog(t, path)
	after := markRun(t, src, fold, mark)
	if n := src.listings.Load(); n == 0 {
		t.Error("the restart after a record vanished did not list the keys")
	}
	if got := foldState(t, fold, ""); !slices.Equal(got, []string{"a=1"}) {
		t.Errorf("fold after the restart = %v, want [a=1] (b's record vanished)", got)
	}
	if after == mark || after == "" {
		t.Errorf("mark after the reconciliation = %q, want a new one (was %q)", after, mark)
	}
}
