package kvcore_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// outputs is an ApplyFunc's effect: what a plugin writing one file per key
// would leave behind.
type outputs struct {
	fold kvcore.Fold
	mu   sync.Mutex
	m    map[string]string
}

func (o *outputs) apply(ctx context.Context, b kvcore.Batch) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if b.Full {
		o.m = map[string]string{}
		return o.fold.Range(ctx, "", "", func(e kvcore.Entry) error {
			o.m[e.Key] = string(e.Value)
			return nil
		})
	}
	for _, u := range b.Updates {
		if u.IsRemoval() {
			delete(o.m, u.Key)
		} else {
			o.m[u.Key] = string(u.Value)
		}
	}
	return nil
}

func (o *outputs) state() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(o.m)) {
		out = append(out, k+"="+o.m[k])
	}
	return out
}

// TestBucketRecreatedOnNATSResyncs deletes and re-creates a NATS bucket
// while WatchApplied is stopped, with at least as many records as the
// fold's cursor names, and restarts it with the identity it persisted: the
// fold and the outputs must end with the new values, which resuming from
// the old cursor would skip.
func TestBucketRecreatedOnNATSResyncs(t *testing.T) {
	b := newNATSBucket(t, kvcore.StoreConfig{Bucket: "app"})
	var last uint64
	for i := range 5 {
		last = b.put(t, fmt.Sprintf("k%d", i), "old")
	}
	path := filepath.Join(t.TempDir(), "fold.snap")
	fold := openLog(t, path)
	ids := &identities{}
	out := &outputs{fold: fold}
	stop := loop(t, b.store, fold, kvcore.AppliedConfig{OnBucketID: ids.persist}, out.apply)
	waitFor(t, "the first sync", func() bool { return fold.Cursor() == kvcore.RevisionCursor(last) && ids.last() != "" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	saved := ids.last()

	js, err := jetstream.New(b.conn.NATS())
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(t.Context(), "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.conn.Store(t.Context(), kvcore.StoreConfig{Bucket: "app"}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		last = b.put(t, fmt.Sprintf("k%d", i), "new")
	}
	want := b.state(t, "")

	stop = loop(t, b.store, fold, kvcore.AppliedConfig{BucketID: saved, OnBucketID: ids.persist}, out.apply)
	defer stop()
	waitFor(t, fmt.Sprintf("the fold and the outputs to become %v", want), func() bool {
		return fold.Cursor() == kvcore.RevisionCursor(last) && slices.Equal(foldState(t, fold, ""), want) &&
			slices.Equal(out.state(), want) && ids.last() != saved
	})
}
