package natskv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// A watch running while its server's store goes back in time (restored
// from a copy taken earlier) and gets as many new records as it lost
// before the watch re-attaches: the stream ends at the watch's position
// again, with other records at its revisions. Resuming after it would skip
// them and deliver nothing; the record at the last revision the watch
// handled tells, and the watch fails with ErrCursorExpired (its caller
// resyncs): another key there, or the same key with another value of the
// same size.
func TestWatchFailsWhenTheStreamReusedItsRevisions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		keys  []string // the new records, after the restore
		value string
	}{
		{"other keys", []string{"d", "e", "a"}, "v3"},
		{"same keys and sizes", []string{"a", "b", "c"}, "w2"},
	} {
		t.Run(tc.name, func(t *testing.T) { testWatchOnReusedRevisions(t, tc.keys, tc.value) })
	}
}

func testWatchOnReusedRevisions(t *testing.T, keys []string, value string) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	s := openStore(t, c, kvcore.StoreConfig{Bucket: "restored"})
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		mustPut(t, s, k, "v1")
	}
	store := srv.StoreDir()
	backup := filepath.Join(t.TempDir(), "store")
	srv.Shutdown()
	copyDir(t, store, backup)
	srv.Start()

	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := next(t, w, eventWait); !ev.Synced; ev = next(t, w, eventWait) {
	}
	var last uint64
	for _, k := range []string{"a", "b", "c"} {
		last = putEventually(t, s, k, "v2")
		if ev := next(t, w, eventWait); rev(ev.Update.Version) != last {
			t.Fatalf("event %+v, want revision %d", ev, last)
		}
	}

	// The store goes back to the copy, and another server on it (another
	// port: the watch cannot reach it) takes as many new records.
	srv.Shutdown()
	if err := os.RemoveAll(store); err != nil {
		t.Fatal(err)
	}
	copyDir(t, backup, store)
	other := natstest.Run(t, func(o *server.Options) { o.StoreDir = store })
	oc := connect(t, fastOpts(other.URL()))
	os2 := openStore(t, oc, kvcore.StoreConfig{Bucket: "restored"})
	var again uint64
	for _, k := range keys {
		again = mustPut(t, os2, k, value)
	}
	oc.Close()
	other.Shutdown()
	if again != last {
		t.Fatalf("the new records end at revision %d, want the watch's %d", again, last)
	}
	srv.Start()

	deadline := time.Now().Add(eventWait)
	for w.Err() == nil {
		select {
		case ev, ok := <-w.Events():
			if ok && !ev.Synced {
				t.Fatalf("the watch delivered %+v from a stream that reused its revisions", ev)
			}
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the watch resumed on a stream that reused its revisions")
		}
	}
	// ErrOutOfStep tells the caller that acknowledged writes were lost
	// (the agent logs it at ERROR), not only that the cursor expired.
	if err := w.Err(); !errors.Is(err, kvcore.ErrCursorExpired) || !errors.Is(err, kvcore.ErrOutOfStep) {
		t.Fatalf("watch error %v, want ErrCursorExpired and ErrOutOfStep", err)
	}
}

// copyDir copies the directory src to dst (which must not exist).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v %s", src, dst, err, out)
	}
}

// putEventually puts key once the connection is back after a restart of
// the server, and returns the revision written.
func putEventually(t *testing.T, s kvcore.Store, key, value string) uint64 {
	t.Helper()
	deadline := time.Now().Add(eventWait)
	for {
		v, err := s.Put(testCtx(t), key, []byte(value))
		if err == nil {
			return rev(v)
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %s: %v", key, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
