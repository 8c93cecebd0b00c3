package agent

import (
	"context"
	"errors"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

// attachSource is the Source a watch's loop reads through: it tells the
// watch's status whether creating the watch on the bucket works, and when
// the loop starts a sync from the bucket's current state.
type attachSource struct {
	kvcore.Store
	status *watchStatus
	watch  string // the watch's name, in the backend's log lines
}

// identifiedSource is an attachSource over a store that knows its bucket's
// identity: it keeps kvcore.BucketIdentifier visible to WatchApplied, whose
// bucket check would otherwise be disarmed by the wrapper.
type identifiedSource struct {
	attachSource
	kvcore.BucketIdentifier
}

// markedSource is an identifiedSource over a store that also reads its
// bucket's mark, kept visible to WatchApplied (kvcore.BucketMarker).
type markedSource struct {
	identifiedSource
	kvcore.BucketMarker
}

// newAttachSource wraps store for watch's WatchApplied, keeping its
// identity and its mark.
func newAttachSource(store kvcore.Store, status *watchStatus, watch string) kvcore.Source {
	src := attachSource{store, status, watch}
	id, ok := store.(kvcore.BucketIdentifier)
	if !ok {
		return src
	}
	if m, ok := store.(kvcore.BucketMarker); ok {
		return markedSource{identifiedSource{src, id}, m}
	}
	return identifiedSource{src, id}
}

func (s attachSource) Watch(ctx context.Context, scope kvcore.Scope, from kvcore.Cursor) (kvcore.Watch, error) {
	return s.WatchBuffered(ctx, scope, from, 0)
}

// WatchBuffered keeps the store's own buffering (kvcore.BufferedWatcher)
// visible to WatchApplied, which otherwise relays every event through a
// goroutine of its own.
func (s attachSource) WatchBuffered(ctx context.Context, scope kvcore.Scope, from kvcore.Cursor, capacity int) (kvcore.Watch, error) {
	if from.IsNone() {
		s.status.syncing()
	}
	// The NATS backend re-creates the watch's consumer by itself when it
	// breaks (a server restart, a missed heartbeat), retrying for as long
	// as it fails; the loop sees no error, only no more changes. Each
	// attempt marks this watch, and only this one, detached until one
	// succeeds: another watch of the same bucket and scope has consumers
	// of its own, and a failure of theirs (the "re-created" that ends a
	// watch of a re-created bucket) says nothing about this one.
	ctx = natskv.WithReattach(ctx, func(err error) { s.status.attached(err, false) })
	ctx = natskv.WithLogAttrs(ctx, "watch", s.watch)
	wa, err := kvcore.WatchWithBuffer(ctx, s.Store, scope, from, capacity)
	switch {
	case errors.Is(err, kvcore.ErrCursorExpired):
		// Not a failure to watch the bucket: the loop syncs from its
		// current state at once (and `once` must not take the watch for
		// detached meanwhile).
	case err == nil || ctx.Err() == nil:
		s.status.attached(err, true)
	}
	return wa, err
}

// KeyVersions keeps the store's versioned key listing
// (kvcore.KeyVersionLister) visible to WatchApplied, whose reconciliation
// checks with it that the fold is in step with the bucket.
func (s attachSource) KeyVersions(ctx context.Context, prefix string) ([]kvcore.KeyVersion, error) {
	if l, ok := s.Store.(kvcore.KeyVersionLister); ok {
		return l.KeyVersions(ctx, prefix)
	}
	return nil, kvcore.ErrUnsupported
}
