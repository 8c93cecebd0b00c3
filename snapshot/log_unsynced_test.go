package snapshot

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// settleDeadline bounds how long these tests wait for a call that should
// return; it is generous, not a latency bound.
const settleDeadline = 30 * time.Second

// An Apply that leaves the cursor unchanged returns before its fsync ends;
// the next Apply writes nothing until that fsync is over, and returns only
// once its own is.
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
	under := make(chan error, 1)
	go func() { under <- l.Apply(context.Background(), []kvcore.Update{put("b", "2", 2)}, cur(1)) }()
	select {
	case err := <-under:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(settleDeadline):
		close(release)
		t.Fatal("an Apply under the unchanged cursor waited for its fsync")
	}
	if e, err := l.Get("b"); err != nil || string(e.Value) != "2" {
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

// A background fsync that fails is the error of the call that waits for
// it, and poisons the log.
func TestLogBackgroundSyncFailurePoisons(t *testing.T) {
	for _, waiter := range []string{"apply", "sync", "close"} {
		t.Run(waiter, func(t *testing.T) {
			l := openLog(t, newPath(t), Options{})
			apply(t, l, cur(1), put("a", "1", 1))
			inject := errors.New("injected")
			l.fs.sync = func(*os.File) error { return inject }
			if err := l.Apply(context.Background(), []kvcore.Update{put("b", "2", 2)}, cur(1)); err != nil {
				t.Fatalf("Apply under the cursor: %v (its fsync runs in the background)", err)
			}
			l.fs = osFS()
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
			if waiter == "close" {
				return
			}
			if err := l.Apply(context.Background(), nil, cur(2)); !errors.Is(err, ErrPoisoned) {
				t.Fatalf("Apply after a failed background fsync: %v, want ErrPoisoned", err)
			}
			if l.Cursor() != cur(1) {
				t.Fatalf("cursor moved to %v", l.Cursor())
			}
		})
	}
}
