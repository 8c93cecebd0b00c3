package kvcore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// These tests run WatchApplied on the real parts: an embedded JetStream
// server through natskv, and the snapshot package's log fold.

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

type natsBucket struct {
	srv   *natstest.Server
	conn  *natskv.Conn
	store kvcore.Store
}

func newNATSBucket(t *testing.T, cfg kvcore.StoreConfig) *natsBucket {
	t.Helper()
	b := &natsBucket{srv: natstest.Run(t)}
	b.conn = natskv.New(natskv.Options{Servers: []string{b.srv.URL()}, Timeout: 5 * time.Second, ReconnectWait: 50 * time.Millisecond, Heartbeat: 300 * time.Millisecond})
	if err := b.conn.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.conn.Close() })
	s, err := b.conn.Store(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.store = s
	return b
}

func (b *natsBucket) put(t *testing.T, key, value string) uint64 {
	t.Helper()
	v, err := b.store.Put(t.Context(), key, []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	rev, _ := v.Revision()
	return rev
}

// state is the bucket's live content as sorted "key=value" pairs.
func (b *natsBucket) state(t *testing.T, prefix string) []string {
	t.Helper()
	es, err := b.store.Scan(t.Context(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Key+"="+string(e.Value))
	}
	slices.Sort(out)
	return out
}

// purgeMarker removes the delete marker of key from the stream, as NATS's
// PurgeDeletes does for old markers: afterwards no change stream can say
// the key was deleted.
func (b *natsBucket) purgeMarker(t *testing.T, key string) {
	t.Helper()
	js, err := jetstream.New(b.conn.NATS())
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), "KV_"+b.store.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(t.Context(), jetstream.WithPurgeSubject("$KV."+b.store.Bucket()+"."+key)); err != nil {
		t.Fatal(err)
	}
}

func openLog(t *testing.T, path string) *snapshot.Log {
	t.Helper()
	f, err := snapshot.Open(path, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func foldState(t *testing.T, f kvcore.Fold, prefix string) []string {
	t.Helper()
	var out []string
	err := f.Range(t.Context(), prefix, "", func(e kvcore.Entry) error {
		out = append(out, e.Key+"="+string(e.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWatchAppliedFollowsNATS syncs, follows live changes through a server
// restart, and, once restarted on its fold, applies exactly the delta and
// removes a key whose delete marker was purged while it was away.
func TestWatchAppliedFollowsNATS(t *testing.T) {
	b := newNATSBucket(t, kvcore.StoreConfig{Bucket: "routes", History: 5})
	b.put(t, "node.a", "1")
	b.put(t, "node.b", "2")
	b.put(t, "other.x", "out of scope")
	path := filepath.Join(t.TempDir(), "fold.snap")
	fold := openLog(t, path)
	var mu sync.Mutex
	var batches []kvcore.Batch
	apply := func(_ context.Context, bt kvcore.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		batches = append(batches, bt)
		return nil
	}
	scope := kvcore.Prefixes("node.")
	stop := loop(t, b.store, fold, kvcore.AppliedConfig{Scope: scope}, apply)
	waitFor(t, "the initial sync", func() bool { return fold.Cursor() == kvcore.RevisionCursor(2) })
	mu.Lock()
	if len(batches) != 1 || !batches[0].Full {
		t.Fatalf("batches after the sync: %+v, want one full batch", batches)
	}
	mu.Unlock()

	b.srv.Restart()
	last := b.put(t, "node.c", "3")
	waitFor(t, "a change made after the server restart", func() bool { return fold.Cursor() == kvcore.RevisionCursor(last) })
	stop()
	if err := fold.Close(); err != nil {
		t.Fatal(err)
	}

	// While nobody watches: a put, and a delete whose marker is purged.
	b.put(t, "node.d", "4")
	if err := b.store.Delete(t.Context(), "node.a"); err != nil {
		t.Fatal(err)
	}
	b.purgeMarker(t, "node.a")
	last = b.put(t, "node.e", "5")

	fold = openLog(t, path)
	mu.Lock()
	batches = nil
	mu.Unlock()
	stop = loop(t, b.store, fold, kvcore.AppliedConfig{Scope: scope}, apply)
	defer stop()
	// deletedApplied reports whether apply has seen node.a's removal (the
	// fold holds it a moment before apply runs).
	deletedApplied := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, bt := range batches {
			for _, u := range bt.Updates {
				if u.Key == "node.a" && u.IsRemoval() {
					return true
				}
			}
		}
		return false
	}
	want := b.state(t, "node.")
	waitFor(t, "the restart to catch up and reconcile the purged delete", func() bool {
		return fold.Cursor() == kvcore.RevisionCursor(last) && slices.Equal(foldState(t, fold, "node."), want) && deletedApplied()
	})
	mu.Lock()
	defer mu.Unlock()
	var revs []uint64
	for _, bt := range batches {
		if bt.Full {
			t.Errorf("restart from a cursor applied a full batch %+v", bt)
		}
		for _, u := range bt.Updates {
			if rev, ok := u.Version.Revision(); ok {
				revs = append(revs, rev)
			}
		}
	}
	if len(revs) != 2 || revs[1] != last {
		t.Errorf("restart applied revisions %v, want only the 2 puts made while it was away", revs)
	}
}

// TestWatchAppliedResyncsExpiredCursorOnNATS resumes from a cursor the
// bucket no longer retains (the server would silently clamp) and checks the
// resync: one full batch, and a key deleted meanwhile is gone from the fold.
func TestWatchAppliedResyncsExpiredCursorOnNATS(t *testing.T) {
	b := newNATSBucket(t, kvcore.StoreConfig{Bucket: "cfg", History: 1})
	b.put(t, "k.gone", "x")
	b.put(t, "k.keep", "1")
	path := filepath.Join(t.TempDir(), "fold.snap")
	fold := openLog(t, path)
	var mu sync.Mutex
	var fulls int
	apply := func(_ context.Context, bt kvcore.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		if bt.Full {
			fulls++
		}
		return nil
	}
	stop := loop(t, b.store, fold, kvcore.AppliedConfig{}, apply)
	waitFor(t, "the first sync", func() bool { return fold.Cursor() == kvcore.RevisionCursor(2) })
	stop()

	if err := b.store.Delete(t.Context(), "k.gone"); err != nil {
		t.Fatal(err)
	}
	b.purgeMarker(t, "k.gone")
	var last uint64
	for i := range 5 { // history 1: the stream's first sequence moves past the cursor
		last = b.put(t, "k.keep", strconv.Itoa(i))
	}

	stop = loop(t, b.store, fold, kvcore.AppliedConfig{}, apply)
	defer stop()
	waitFor(t, "the resync", func() bool {
		return fold.Cursor() == kvcore.RevisionCursor(last) && slices.Equal(foldState(t, fold, ""), []string{"k.keep=4"})
	})
	mu.Lock()
	defer mu.Unlock()
	if fulls != 2 {
		t.Errorf("full batches = %d, want 2 (the first sync and the resync)", fulls)
	}
}

// crashChildEnv makes the test binary run WatchApplied on the bucket and
// fold it names (see crashChild) instead of the tests.
const crashChildEnv = "KVCORE_TEST_CRASH_CHILD"

// crashChild runs WatchApplied on a real fold and records every applied
// revision in an effects file (fsynced). At the configured apply call it
// kills itself with SIGKILL: before recording ("before"), or after
// recording but before returning, so before the checkpoint ("after").
func crashChild() int {
	var url, fold, effects, when string
	var killAt int
	fmt.Sscan(os.Getenv(crashChildEnv), &url, &fold, &effects, &killAt, &when)
	conn := natskv.New(natskv.Options{Servers: []string{url}, Timeout: 5 * time.Second})
	ctx := context.Background()
	if err := conn.Connect(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	store, err := conn.Open(ctx, "crash")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f, err := snapshot.Open(fold, snapshot.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out, err := os.OpenFile(effects, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	calls := 0
	apply := func(_ context.Context, b kvcore.Batch) error {
		calls++
		kill := calls == killAt
		if kill && when == "before" {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		var lines strings.Builder
		record := func(e kvcore.Entry) {
			rev, _ := e.Version.Revision()
			fmt.Fprintf(&lines, "%d\n", rev)
		}
		if b.Full {
			f.Range(ctx, "", "", func(e kvcore.Entry) error { record(e); return nil })
		}
		for _, u := range b.Updates {
			record(u.Entry())
		}
		out.WriteString(lines.String())
		out.Sync()
		if kill {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		return nil
	}
	err = kvcore.WatchApplied(ctx, store, f, kvcore.AppliedConfig{Scope: kvcore.AllKeys(), MaxBatch: 3, Window: time.Millisecond}, apply)
	fmt.Fprintln(os.Stderr, "WatchApplied returned:", err)
	return 1
}

// TestWatchAppliedSurvivesSIGKILL kills a process running WatchApplied at
// every apply call, before and after the effects are recorded, and checks
// invariant 1 on the real fold: every revision at or below the persisted
// cursor was applied. A last, unkilled run must then apply everything.
func TestWatchAppliedSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts many processes")
	}
	b := newNATSBucket(t, kvcore.StoreConfig{Bucket: "crash"})
	var last uint64
	for i := range 10 {
		last = b.put(t, fmt.Sprintf("k%02d", i), "v")
	}
	dir := t.TempDir()
	foldPath, effects := filepath.Join(dir, "fold.snap"), filepath.Join(dir, "effects")
	run := func(killAt int, when string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %d %s", crashChildEnv, b.srv.URL(), foldPath, effects, killAt, when))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ProcessState.String() != "signal: killed" {
				t.Fatalf("child (kill at %d %s) ended with %v; stderr:\n%s", killAt, when, err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("child (kill at %d %s) never reached its kill point; stderr:\n%s", killAt, when, stderr.String())
		}
	}
	checkInvariant := func(stage string) {
		t.Helper()
		snap, err := snapshot.Load(foldPath)
		if err != nil {
			t.Fatal(err)
		}
		var cursor uint64
		if snap != nil {
			cursor, _ = snap.Cursor.Revision()
		}
		applied := map[uint64]bool{}
		if fh, err := os.Open(effects); err == nil {
			sc := bufio.NewScanner(fh)
			for sc.Scan() {
				n, _ := strconv.ParseUint(sc.Text(), 10, 64)
				applied[n] = true
			}
			fh.Close()
		}
		for rev := uint64(1); rev <= cursor; rev++ {
			if !applied[rev] {
				t.Fatalf("%s: persisted cursor %d but revision %d was never applied", stage, cursor, rev)
			}
		}
	}
	// catchUp runs WatchApplied in this process, recording effects the same
	// way, until the fold reaches the last revision.
	catchUp := func() {
		t.Helper()
		fold := openLog(t, foldPath)
		out, err := os.OpenFile(effects, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		apply := func(ctx context.Context, bt kvcore.Batch) error {
			record := func(e kvcore.Entry) {
				rev, _ := e.Version.Revision()
				fmt.Fprintf(out, "%d\n", rev)
			}
			if bt.Full {
				fold.Range(ctx, "", "", func(e kvcore.Entry) error { record(e); return nil })
			}
			for _, u := range bt.Updates {
				record(u.Entry())
			}
			return out.Sync()
		}
		stop := loop(t, b.store, fold, kvcore.AppliedConfig{MaxBatch: 3}, apply)
		waitFor(t, "the catch-up run", func() bool { return fold.Cursor() == kvcore.RevisionCursor(last) })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if err := fold.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Round 1 kills the first sync (a full batch); later rounds kill a delta
	// batch. Each kill is followed by a check, then a catch-up run and
	// another check.
	for round, when := range []string{"before", "after", "before", "after"} {
		if round > 0 {
			for range 3 {
				last = b.put(t, fmt.Sprintf("k%02d", last), "v")
			}
		}
		run(1, when)
		checkInvariant(fmt.Sprintf("round %d, killed %s recording", round, when))
		catchUp()
		checkInvariant(fmt.Sprintf("round %d, after catching up", round))
	}
}
