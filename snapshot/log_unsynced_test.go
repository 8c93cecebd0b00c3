package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// settleDeadline bounds how long these tests wait for a call that should
// return; it is generous, not a latency bound.
const settleDeadline = 30 * time.Second

// returnsBeforeFsync applies updates under l's unchanged cursor and fails
// unless the Apply returns while its fsync waits for release (which it
// closes when it gives up, to end the fsync).
func returnsBeforeFsync(t *testing.T, l *Log, updates []kvcore.Update, release chan struct{}) {
	t.Helper()
	under := make(chan error, 1)
	go func() { under <- l.Apply(context.Background(), updates, l.Cursor()) }()
	select {
	case err := <-under:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(settleDeadline):
		close(release)
		t.Fatal("an Apply under the unchanged cursor waited for its fsync")
	}
}

// big is a value that makes an Apply's write larger than deferSyncBytes.
var big = strings.Repeat("v", deferSyncBytes)

// An Apply that leaves the cursor unchanged and writes more than
// deferSyncBytes returns before its fsync ends; the next Apply writes
// nothing until that fsync is over, and returns only once its own is.
func TestLogApplyUnderCursorSyncsInBackground(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1))

	release := make(chan struct{})
	var syncing, writes atomic.Int32
	real := osFS()
	l.fs.sync = func(f *os.File) error {
		syncing.Add(1)
		<-release
		defer syncing.Add(-1)
		return real.sync(f)
	}
	l.fs.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		if syncing.Load() > 0 {
			t.Error("a write while the fsync of the last one runs")
		}
		writes.Add(1)
		return real.writeAt(f, b, off)
	}
	returnsBeforeFsync(t, l, []kvcore.Update{put("b", big, 2)}, release)
	if e, err := l.Get("b"); err != nil || string(e.Value) != big {
		t.Fatalf("b = %v, %v: the batch is not visible while its fsync runs", e, err)
	}

	checkpoint := make(chan error, 1)
	go func() { checkpoint <- l.Apply(context.Background(), nil, cur(2)) }()
	deadline := time.Now().Add(settleDeadline)
	for syncing.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-checkpoint:
		t.Fatalf("the checkpoint returned (%v) before the earlier fsync ended", err)
	default:
	}
	close(release)
	if err := <-checkpoint; err != nil {
		t.Fatal(err)
	}
	if n := writes.Load(); n != 2 {
		t.Fatalf("%d writes, want 2", n)
	}
	l.Close()
	l = openLog(t, p, Options{})
	if l.Cursor() != cur(2) || l.Len() != 2 {
		t.Fatalf("reopened: cursor %v, %d keys; want rev 2, 2 keys", l.Cursor(), l.Len())
	}
}

// A small Apply that leaves the cursor unchanged starts no fsync: the
// checkpoint that follows writes its cursor and makes both durable with one
// fsync, and returns only once it is done.
func TestLogApplyUnderCursorLeavesSmallSyncToTheNextCall(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1))
	events := recordFileOps(l)
	apply(t, l, cur(1), put("b", "2", 2))
	if l.unsynced != nil {
		t.Fatal("a small Apply under the cursor started its fsync")
	}
	if got := strings.Join(*events, " "); got != "write" {
		t.Fatalf("a small Apply under the cursor did %q, want only its write", got)
	}
	if e, err := l.Get("b"); err != nil || string(e.Value) != "2" {
		t.Fatalf("b = %v, %v: the batch is not visible before its fsync", e, err)
	}
	apply(t, l, cur(2))
	if got := strings.Join(*events, " "); got != "write write sync" {
		t.Fatalf("the checkpoint after it did %q, want its write and one fsync for both", got)
	}
	l.Close()
	l = openLog(t, p, Options{})
	if l.Cursor() != cur(2) || l.Len() != 2 {
		t.Fatalf("reopened: cursor %v, %d keys; want rev 2, 2 keys", l.Cursor(), l.Len())
	}
}

// An fsync of an Apply under the cursor that fails, whether it ran in the
// background (a big write) or was left to the next call (a small one), is
// the error of the call that settles it, and poisons the log.
func TestLogBackgroundSyncFailurePoisons(t *testing.T) {
	for _, size := range []string{"small", "big"} {
		for _, waiter := range []string{"apply", "sync", "close"} {
			t.Run(size+"/"+waiter, func(t *testing.T) {
				testSyncFailurePoisons(t, size == "big", waiter)
			})
		}
	}
}

func testSyncFailurePoisons(t *testing.T, background bool, waiter string) {
	l := openLog(t, newPath(t), Options{})
	apply(t, l, cur(1), put("a", "1", 1))
	inject := errors.New("injected")
	l.fs.sync = func(*os.File) error { return inject }
	value := "2"
	if background {
		value = big
	}
	if err := l.Apply(context.Background(), []kvcore.Update{put("b", value, 2)}, cur(1)); err != nil {
		t.Fatalf("Apply under the cursor: %v (its fsync runs later)", err)
	}
	if background {
		l.fs = osFS() // the fsync ran already
	}
	var err error
	switch waiter {
	case "apply":
		err = l.Apply(context.Background(), nil, cur(2))
	case "sync":
		err = l.Sync(context.Background())
	case "close":
		err = l.Close()
	}
	if !errors.Is(err, inject) {
		t.Fatalf("%s after a failed background fsync: %v, want it", waiter, err)
	}
	l.fs = osFS()
	if waiter == "close" {
		return
	}
	if err := l.Apply(context.Background(), nil, cur(2)); !errors.Is(err, ErrPoisoned) {
		t.Fatalf("Apply after a failed background fsync: %v, want ErrPoisoned", err)
	}
	if l.Cursor() != cur(1) {
		t.Fatalf("cursor moved to %v", l.Cursor())
	}
}

// Small Applies under an unchanged cursor leave their fsyncs to the next
// one only while what they leave unsynced stays within deferSyncBytes: the
// Apply that would pass it starts the fsync, which covers the writes
// before it.
func TestLogLeavesAtMostDeferSyncBytesUnsynced(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1))
	events := recordFileOps(l)
	third := strings.Repeat("v", deferSyncBytes/3)
	for i := range 3 {
		apply(t, l, cur(1), put(fmt.Sprintf("k%d", i), third, uint64(2+i)))
		// The first two are left unsynced; the third would bring that past
		// deferSyncBytes, so it starts the fsync, in the background.
		if started := l.unsynced != nil; started != (i == 2) || (l.deferred > 0) == started {
			t.Fatalf("after Apply %d of a third of deferSyncBytes: fsync started %v, %d bytes left unsynced", i+1, started, l.deferred)
		}
	}
	if err := l.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(*events, " "); got != "write write write sync" {
		t.Fatalf("three Applies of a third of deferSyncBytes each, then Sync, did %q", got)
	}
}

// recordFileOps makes l's appends and fsyncs append "write" and "sync" to
// the slice it returns, in the order they run.
func recordFileOps(l *Log) *[]string {
	var events []string
	real := osFS()
	l.fs.sync = func(f *os.File) error {
		events = append(events, "sync")
		return real.sync(f)
	}
	l.fs.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		events = append(events, "write")
		return real.writeAt(f, b, off)
	}
	return &events
}
