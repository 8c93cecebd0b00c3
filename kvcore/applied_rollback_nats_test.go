package kvcore_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// A server whose store goes back in time (restored from a copy taken
// earlier; an unsynced tail lost in a crash) keeps the bucket's identity
// and numbers new records with revisions a fold already applied. A restart
// whose cursor the new records have reached again resumes "in place" and
// would keep the lost values and miss the new ones for ever; the
// reconciliation's per-key revisions show the fold out of step, and the
// loop resyncs. New records of the same keys with values of the same size
// leave the revisions, the sizes and the stream's sequences and count as
// they were: the bucket's mark (the last record's time) and the values of
// the fold's latest keys up to where the restart resumed tell, even behind
// more new records than the reconciliation reads back.
func TestReconcileResyncsAFoldAheadOfABucketThatWentBackInTime(t *testing.T) {
	for _, tc := range []struct {
		name  string
		keys  []string // the new records at the lost ones' revisions
		value string
		more  []string // new records after them, of value "v3"
		want  []string
	}{
		{"other keys", []string{"d", "e", "a"}, "v3", nil, []string{"a=v3", "b=v1", "c=v1", "d=v3", "e=v3"}},
		{"same keys and sizes", []string{"a", "b", "c"}, "w2", nil, []string{"a=w2", "b=w2", "c=w2", "d=v1", "e=v1"}},
		{"same keys and sizes, then more", []string{"a", "b", "c"}, "w2", []string{"f", "g", "h", "i", "j"},
			[]string{"a=w2", "b=w2", "c=w2", "d=v1", "e=v1", "f=v3", "g=v3", "h=v3", "i=v3", "j=v3"}},
	} {
		t.Run(tc.name, func(t *testing.T) { testReconcileOnReusedRevisions(t, tc.keys, tc.value, tc.more, tc.want) })
	}
}

func testReconcileOnReusedRevisions(t *testing.T, keys []string, value string, more, want []string) {
	b := newNATSBucket(t, kvcore.StoreConfig{Bucket: "rolled"})
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		b.put(t, k, "v1")
	}
	backup := copyStore(t, b)
	for _, k := range []string{"a", "b", "c"} {
		putEventually(t, b, k, "v2")
	}
	path := filepath.Join(t.TempDir(), "fold.snap")
	fold := openLog(t, path)
	mark := markRun(t, b.store, fold, "")
	before := fold.Cursor()
	fold.Close()

	// The store goes back to the copy; as many new records as were lost
	// bring the stream's last revision back to the fold's cursor.
	restoreStore(t, b, backup)
	var last uint64
	for _, k := range keys {
		last = putEventually(t, b, k, value)
	}
	if kvcore.RevisionCursor(last) != before {
		t.Fatalf("the new records end at revision %d, want the fold's cursor %v", last, before)
	}
	for _, k := range more {
		putEventually(t, b, k, "v3")
	}

	fold = openLog(t, path)
	defer fold.Close()
	markRun(t, b.store, fold, mark)
	if got := foldState(t, fold, ""); !slices.Equal(got, want) {
		t.Errorf("fold after the restart = %v, want the bucket's %v", got, want)
	}
}

// A batch whose apply failed leaves its records folded ahead of the
// cursor; the server's store then goes back to a copy taken when the fold
// last matched the bucket, and loses them. The bucket's mark is again the
// one recorded then, but the fold is not what it was: the loop forgot the
// mark before folding the batch, so the restart lists the keys and drops
// the lost records from the fold instead of keeping them for ever.
func TestRestoreToTheMarkDropsAFailedBatchFoldedAhead(t *testing.T) {
	b := newNATSBucket(t, kvcore.StoreConfig{Bucket: "ahead"})
	b.put(t, "a", "1")
	b.put(t, "b", "2")
	path := filepath.Join(t.TempDir(), "fold.snap")
	fold := openLog(t, path)
	mark := markRun(t, b.store, fold, "")
	backup := copyStore(t, b)
	putEventually(t, b, "c", "lost")

	var mu sync.Mutex
	tried := make(chan struct{}, 1)
	stop := loop(t, b.store, fold, kvcore.AppliedConfig{
		Mark:   mark,
		OnMark: func(_ context.Context, m string) error { mu.Lock(); mark = m; mu.Unlock(); return nil },
	}, func(_ context.Context, batch kvcore.Batch) error {
		if slices.ContainsFunc(batch.Updates, func(u kvcore.Update) bool { return u.Key == "c" }) {
			select {
			case tried <- struct{}{}:
			default:
			}
		}
		return errors.New("refused")
	})
	select {
	case <-tried:
	case <-time.After(10 * time.Second):
		t.Fatal("the batch with c never reached apply")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	fold.Close()

	restoreStore(t, b, backup)
	fold = openLog(t, path)
	defer fold.Close()
	mu.Lock()
	known := mark
	mu.Unlock()
	markRun(t, b.store, fold, known)
	if got, want := foldState(t, fold, ""), []string{"a=1", "b=2"}; !slices.Equal(got, want) {
		t.Errorf("fold after the restart = %v, want the bucket's %v", got, want)
	}
}

// A value the apply refuses (here whenever the fold holds it, as a plugin
// rendering the whole view does) is folded ahead of the cursor by a batch
// that fails; the server's store then goes back to a copy taken before it,
// and loses it. The restart's watch never delivers it again, so no batch
// replaces it: applying the next change found it in the fold, past the
// bucket's end, and the loop resynced, instead of failing for ever on a
// value the bucket no longer has.
func TestRestoreThatLostARefusedValueFoldedAheadResyncs(t *testing.T) {
	b := newNATSBucket(t, kvcore.StoreConfig{Bucket: "refused"})
	b.put(t, "a", "1")
	path := filepath.Join(t.TempDir(), "fold.snap")
	fold := openLog(t, path)
	markRun(t, b.store, fold, "")
	backup := copyStore(t, b)
	putEventually(t, b, "c", "bad")

	refuses := func(fold kvcore.Fold) kvcore.ApplyFunc {
		return func(context.Context, kvcore.Batch) error {
			if e, err := fold.Get("c"); err == nil && string(e.Value) == "bad" {
				return errors.New("refused: c is bad")
			}
			return nil
		}
	}
	var mu sync.Mutex
	var progress kvcore.Progress
	onProgress := func(p kvcore.Progress) { mu.Lock(); progress = p; mu.Unlock() }
	stop := loop(t, b.store, fold, kvcore.AppliedConfig{OnProgress: onProgress}, refuses(fold))
	waitFor(t, "the batch with c to fail", func() bool { mu.Lock(); defer mu.Unlock(); return progress.Err != nil })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	fold.Close()

	restoreStore(t, b, backup)
	last := putEventually(t, b, "d", "2")
	fold = openLog(t, path)
	defer fold.Close()
	mu.Lock()
	progress = kvcore.Progress{}
	mu.Unlock()
	stop = loop(t, b.store, fold, kvcore.AppliedConfig{OnProgress: onProgress}, refuses(fold))
	waitFor(t, "the loop to catch up", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return progress.Synced && progress.Cursor == kvcore.RevisionCursor(last)
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := foldState(t, fold, ""), []string{"a=1", "d=2"}; !slices.Equal(got, want) {
		t.Errorf("fold = %v, want the bucket's %v", got, want)
	}
}

// copyStore copies the server's store, stopped meanwhile, and returns
// where the copy is.
func copyStore(t *testing.T, b *natsBucket) string {
	t.Helper()
	backup := filepath.Join(t.TempDir(), "store")
	b.srv.Shutdown()
	if out, err := exec.Command("cp", "-a", b.srv.StoreDir(), backup).CombinedOutput(); err != nil {
		t.Fatalf("copying the store: %v %s", err, out)
	}
	b.srv.Start()
	return backup
}

// restoreStore restarts the server on the copy of its store at backup.
func restoreStore(t *testing.T, b *natsBucket, backup string) {
	t.Helper()
	store := b.srv.StoreDir()
	b.srv.Shutdown()
	if err := os.RemoveAll(store); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", backup, store).CombinedOutput(); err != nil {
		t.Fatalf("restoring the store: %v %s", err, out)
	}
	b.srv.Start()
}

// putEventually puts key once the connection is back after a restart of
// the server, and returns the revision written.
func putEventually(t *testing.T, b *natsBucket, key, value string) uint64 {
	t.Helper()
	var rev uint64
	waitFor(t, "a put of "+key, func() bool {
		v, err := b.store.Put(t.Context(), key, []byte(value))
		rev, _ = v.Revision()
		return err == nil
	})
	return rev
}
