package kvcore_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// A server whose store goes back in time (restored from a copy taken
// earlier; an unsynced tail lost in a crash) keeps the bucket's identity
// and numbers new records with revisions a fold already applied. A restart
// whose cursor the new records have reached again resumes "in place" and
// would keep the lost values and miss the new ones for ever; the
// reconciliation's per-key revisions show the fold out of step, and the
// loop resyncs.
func TestReconcileResyncsAFoldAheadOfABucketThatWentBackInTime(t *testing.T) {
	b := newNATSBucket(t, kvcore.StoreConfig{Bucket: "rolled"})
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		b.put(t, k, "v1")
	}
	store := b.srv.StoreDir()
	backup := filepath.Join(t.TempDir(), "store")
	b.srv.Shutdown()
	if out, err := exec.Command("cp", "-a", store, backup).CombinedOutput(); err != nil {
		t.Fatalf("copying the store: %v %s", err, out)
	}
	b.srv.Start()
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
	b.srv.Shutdown()
	if err := os.RemoveAll(store); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", backup, store).CombinedOutput(); err != nil {
		t.Fatalf("restoring the store: %v %s", err, out)
	}
	b.srv.Start()
	var last uint64
	for _, k := range []string{"d", "e", "a"} {
		last = putEventually(t, b, k, "v3")
	}
	if kvcore.RevisionCursor(last) != before {
		t.Fatalf("the new records end at revision %d, want the fold's cursor %v", last, before)
	}

	fold = openLog(t, path)
	defer fold.Close()
	markRun(t, b.store, fold, mark)
	want := []string{"a=v3", "b=v1", "c=v1", "d=v3", "e=v3"}
	if got := foldState(t, fold, ""); !slices.Equal(got, want) {
		t.Errorf("fold after the restart = %v, want the bucket's %v", got, want)
	}
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
