package agent

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/memkv"
)

// The source a watch's loop reads through keeps the store's own buffering
// visible (kvcore.BufferedWatcher), whatever else it wraps: the loop then
// reads the store's watch with no relay goroutine in between.
func TestAttachSourceKeepsTheStoresBuffering(t *testing.T) {
	ctx := t.Context()
	store, err := memkv.New().Store(ctx, kvcore.StoreConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	status := newWatchStatus(&WatchConf{Name: "w", Bucket: "b"}, make(chan struct{}, 1), time.Now)
	src := newAttachSource(store, status, "w")
	bw, ok := src.(kvcore.BufferedWatcher)
	if !ok {
		t.Fatalf("the attach source %T does not implement kvcore.BufferedWatcher", src)
	}
	wa, err := bw.WatchBuffered(ctx, kvcore.AllKeys(), kvcore.Cursor{}, 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer wa.Stop()
	if n := cap(wa.Events()); n < 5000 {
		t.Errorf("the watch buffers %d events, want 5000", n)
	}
}

// expiredStore refuses every watch with an expired cursor.
type expiredStore struct{ kvcore.Store }

func (expiredStore) Watch(context.Context, kvcore.Scope, kvcore.Cursor) (kvcore.Watch, error) {
	return nil, fmt.Errorf("watch b: %w (compacted)", kvcore.ErrCursorExpired)
}

// A watch refused for an expired cursor is not detached: the loop syncs
// from the bucket's current state at once. (Once took the watch for
// detached, and failed, when it looked in between.)
func TestExpiredCursorIsNotDetached(t *testing.T) {
	status := newWatchStatus(&WatchConf{Name: "w", Bucket: "b"}, make(chan struct{}, 1), time.Now)
	src := newAttachSource(expiredStore{}, status, "w")
	if _, err := src.Watch(t.Context(), kvcore.AllKeys(), kvcore.RevisionCursor(7)); !errors.Is(err, kvcore.ErrCursorExpired) {
		t.Fatalf("watch = %v", err)
	}
	if s := status.get(); s.State == stateDetached {
		t.Errorf("state %s (%s), want it not detached", s.State, s.Reason)
	}
}
