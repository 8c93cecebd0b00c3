package kvcore

import (
	"context"
	"errors"
	"fmt"
)

// Batch is one unit of work [WatchApplied] hands to its [ApplyFunc].
type Batch struct {
	// Updates are the batch's changes in version order. The fold already
	// holds them when apply runs: reading it gives the state after this
	// batch (or a later one, when an earlier run folded further before it
	// stopped).
	//
	// In a full batch the applier renders from the fold, and Updates only
	// inform: they hold the delete and purge markers the sync delivered,
	// synthetic deletes (unknown version) for keys the fold held that
	// vanished from the bucket while nobody watched, and any update that
	// arrived while the batch was being retried. The puts of the sync itself
	// are not listed.
	Updates []Update
	// Full asks the applier to make its outputs reflect the whole fold. It is
	// set after an initial sync, after a resync that followed
	// [ErrCursorExpired] or a change of bucket identity, and once after
	// catching up when [AppliedConfig.FullRender] asks for it.
	Full bool
	// Cursor is the position the fold moves to once apply returns nil.
	Cursor Cursor
}

// ApplyFunc applies a batch: it turns the changes into effects (files, hooks)
// and returns nil only once they are committed. It must be idempotent:
// delivery is at-least-once, and a batch whose apply failed, or whose
// checkpoint a crash prevented, is delivered again. A failed batch is retried
// with the updates that arrived meanwhile appended to it, so a later change
// that fixes what made it fail gets through.
//
// Once started, an attempt is not interrupted by the loop's shutdown: its
// context is detached from the loop's cancellation, so apply must bound its
// own work (plugin and hook timeouts). The loop checkpoints the batch, then
// stops.
type ApplyFunc func(ctx context.Context, b Batch) error

// Source is what [WatchApplied] reads a bucket through: its change stream,
// and its live keys, which the loop compares with the fold's to catch
// deletions whose markers the bucket dropped before the loop saw them.
// A [Store] is a Source. A Source that also implements [BucketIdentifier]
// lets the loop notice a bucket deleted and created again (see
// [AppliedConfig.OnBucketID]).
type Source interface {
	Watcher
	// Keys lists the live keys under prefix; see [Reader]. It may leave
	// out keys whose value is empty.
	Keys(ctx context.Context, prefix string) ([]string, error)
	// Entry reads one key, empty values included; see [Reader]. The loop
	// asks it to confirm that a key missing from a listing is really gone
	// before deleting it, so it answers from the bucket itself, never from
	// a copy that may lag it (natskv reads through the stream's leader).
	Entry(ctx context.Context, key string) (Entry, error)
}

// Progress is a snapshot of a [WatchApplied] loop's state, passed to
// [AppliedConfig.OnProgress].
type Progress struct {
	// Cursor is the fold's committed cursor.
	Cursor Cursor
	// Synced is true once the loop has caught up with the bucket and applied
	// everything it saw doing so. It turns false again while a resync
	// rebuilds the fold after [ErrCursorExpired].
	Synced bool
	// Err is the failure being retried; nil after the step succeeds (a
	// step within it that failed and then succeeded, such as a fold write
	// between two attempts of a failing batch, puts it back).
	Err error
	// Failures counts consecutive failures.
	Failures int
	// Pending is how far the loop trailed the bucket when it applied its
	// last batch: the Event.Pending of the batch's last update (records
	// the server had yet to deliver), or the events delivered meanwhile
	// and waiting to be taken (one of them may be a Synced marker; behind
	// a relay, those in its buffer), whichever is more. More than 0 while
	// the loop trails the bucket, as when a batch took long.
	Pending uint64
}

// WatchApplied keeps fold in sync with the keys of cfg.Scope in src and hands
// every change to apply, advancing the fold's cursor only after apply
// returned nil. It runs until ctx is done and then returns nil; it returns
// early only for a configuration error (an empty scope, an invalid prefix)
// or, when [AppliedConfig.MaxFoldFailures] is set, for a fold that keeps
// failing ([ErrFoldFailed]).
//
// A fold with a cursor resumes with a delta watch from that cursor and, once
// caught up, reconciles its keys with the bucket's (see
// [AppliedConfig.Reconcile]). A fold without a cursor, or whose cursor the
// bucket no longer retains ([ErrCursorExpired]) or was taken on another
// incarnation of the bucket (see [AppliedConfig.OnBucketID]), is synced
// from the bucket's current state: the whole state is folded first, keys
// that vanished are deleted, and only then is apply called, once, with a
// full batch — a plugin never sees a half-finished sync as if it were the
// whole bucket.
//
// Each batch goes through three durable steps: the updates are folded under
// the previous cursor (the fold may hold data ahead of its cursor), apply
// runs, and the new cursor is committed. A crash between any two steps loses
// nothing: the restarted loop resumes from the fold's cursor and delivers the
// batch again. A failed step is retried after a jittered exponential backoff
// (AppliedConfig.NoRetry returns it instead); a failed watch is reopened
// from the fold's cursor (never from an in-memory position). Shutdown lets
// an apply in flight finish and be checkpointed; a batch not yet handed to
// apply is abandoned, to be delivered again.
//
// WatchApplied owns fold while it runs: nothing else may call its Apply.
func WatchApplied(ctx context.Context, src Source, fold Fold, cfg AppliedConfig, apply ApplyFunc) error {
	switch {
	case src == nil:
		return errors.New("kvcore: watch applied: no source (src is nil)")
	case fold == nil:
		return errors.New("kvcore: watch applied: no fold (fold is nil)")
	case apply == nil:
		return errors.New("kvcore: watch applied: no apply function (apply is nil)")
	}
	if err := cfg.Scope.Validate(); err != nil {
		return fmt.Errorf("kvcore: watch applied: %w", err)
	}
	return newAppliedLoop(src, fold, cfg.withDefaults(), apply).run(ctx)
}
