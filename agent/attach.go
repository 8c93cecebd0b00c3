package agent

import (
	"context"
	"errors"
	"log/slog"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// attachSource is the Source a watch's loop reads through: it tells the
// watch's status whether creating the watch on the bucket works, and when
// the loop starts a sync from the bucket's current state.
type attachSource struct {
	kvcore.Store
	status *watchStatus
}

// identifiedSource is an attachSource over a store that knows its bucket's
// identity: it keeps kvcore.BucketIdentifier visible to WatchApplied, whose
// bucket check would otherwise be disarmed by the wrapper.
type identifiedSource struct {
	attachSource
	kvcore.BucketIdentifier
}

// newAttachSource wraps store for WatchApplied, keeping its identity.
func newAttachSource(store kvcore.Store, status *watchStatus) kvcore.Source {
	src := attachSource{store, status}
	if id, ok := store.(kvcore.BucketIdentifier); ok {
		return identifiedSource{src, id}
	}
	return src
}

func (s attachSource) Watch(ctx context.Context, scope kvcore.Scope, from kvcore.Cursor) (kvcore.Watch, error) {
	if from.IsNone() {
		s.status.syncing()
	}
	wa, err := s.Store.Watch(ctx, scope, from)
	if err == nil || ctx.Err() == nil {
		s.status.attached(err, true)
	}
	return wa, err
}

// The NATS backend re-creates a watch's consumer by itself when it breaks
// (a server restart, a missed heartbeat), retrying for as long as it fails,
// and tells nobody but its logger: the loop above it sees no error, only no
// more changes. attachTap reads those log records (by their messages, which
// kvcore/natskv's recover.go writes) to mark the watches of that bucket and
// scope detached until an attempt succeeds.
const (
	msgReattachFailed = "re-creating watch consumer failed; retrying"
	msgReattached     = "watch consumer re-created"
)

// attachTap is a slog.Handler that passes every record on to next and
// reports consumer re-creation to onAttach.
type attachTap struct {
	next     slog.Handler
	attrs    []slog.Attr // bucket and scope come from With
	onAttach func(bucket, scope string, err error)
}

func (t *attachTap) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || t.next.Enabled(ctx, l)
}

func (t *attachTap) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == msgReattachFailed || r.Message == msgReattached {
		var bucket, scope string
		var err error
		visit := func(a slog.Attr) bool {
			switch a.Key {
			case "bucket":
				bucket = a.Value.String()
			case "scope":
				scope = a.Value.String()
			case "err":
				if e, ok := a.Value.Any().(error); ok {
					err = e
				} else {
					err = errors.New(a.Value.String())
				}
			}
			return true
		}
		for _, a := range t.attrs {
			visit(a)
		}
		r.Attrs(visit)
		if r.Message == msgReattached {
			err = nil
		} else if err == nil {
			err = errors.New(msgReattachFailed)
		}
		t.onAttach(bucket, scope, err)
	}
	if !t.next.Enabled(ctx, r.Level) {
		return nil
	}
	return t.next.Handle(ctx, r)
}

func (t *attachTap) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attachTap{next: t.next.WithAttrs(attrs), attrs: append(t.attrs[:len(t.attrs):len(t.attrs)], attrs...), onAttach: t.onAttach}
}

func (t *attachTap) WithGroup(name string) slog.Handler {
	return &attachTap{next: t.next.WithGroup(name), attrs: t.attrs, onAttach: t.onAttach}
}

// consumerAttach routes a consumer re-creation report to the watches of
// bucket and scope.
func (a *Agent) consumerAttach(bucket, scope string, err error) {
	for _, w := range a.watches {
		if w.conf.Bucket == bucket && w.scope().String() == scope {
			w.status.attached(err, false)
		}
	}
}
