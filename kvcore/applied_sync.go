package kvcore

import (
	"context"
	"errors"
	"fmt"
)

// sync folds a state-sync watch's initial state, deletes the keys it lacks,
// and applies one full batch. pre is the bucket's mark read before the
// watch attached.
func (l *appliedLoop) sync(ctx context.Context, wa Watch, pre bucketMark) error {
	l.foldedUpTo = 0 // the sync folds the bucket's state afresh (revisions of an earlier incarnation mean nothing)
	if l.progress.Synced {
		l.progress.Synced = false
		l.report()
	}
	prefixes := l.cfg.Scope.List()
	held, err := l.holdsAny(ctx, prefixes)
	if err != nil {
		return err
	}
	var seen map[string]struct{}
	if held {
		seen = make(map[string]struct{})
	}
	under := l.fold.Cursor() // unchanged until the full batch is applied
	if !under.IsNone() {
		if err := l.setFolding(ctx, true); err != nil {
			return err
		}
	}
	var removed, chunk []Update
	var high Version
	for synced := false; !synced; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-wa.Events():
			if !ok {
				return watchEnd(wa)
			}
			if ev.Synced {
				synced = true
				break
			}
			if !ev.Version.IsUnknown() {
				high = ev.Version
			}
			if seen != nil {
				seen[ev.Key] = struct{}{}
			}
			if ev.IsRemoval() {
				removed = append(removed, ev.Update)
			}
			if chunk = append(chunk, ev.Update); len(chunk) >= syncChunk {
				if err := l.foldUnder(ctx, chunk, under); err != nil {
					return err
				}
				chunk = nil
			}
		}
	}
	if err := l.foldUnder(ctx, chunk, under); err != nil {
		return err
	}
	if held {
		stale, err := StaleKeys(ctx, l.fold, l.cfg.Scope.List(), seen)
		if err != nil {
			return l.foldReadFailed(fmt.Errorf("kvcore: listing fold keys: %w", err))
		}
		deletes, err := l.staleDeletes(ctx, stale)
		if err != nil {
			return err
		}
		if err := l.foldUnder(ctx, deletes, under); err != nil {
			return err
		}
		removed = append(removed, deletes...)
	}
	// The fold now holds the bucket's current state, of which a cursor
	// from before (expired, or of another incarnation) says nothing.
	var next Cursor
	if !high.IsUnknown() {
		next = CursorAt(high)
	}
	l.owed &^= owedFullRender // the sync's full batch renders everything
	if _, err := l.commit(ctx, wa, Batch{Updates: removed, Full: true, Cursor: next}, false); err != nil {
		return err
	}
	if err := l.setFolding(ctx, false); err != nil {
		return err
	}
	if err := l.adoptBucket(ctx); err != nil {
		return err
	}
	l.recordMark(ctx, pre)
	l.caughtUp(wa)
	return nil
}

// holdsAny reports whether the fold has an entry under any of prefixes.
func (l *appliedLoop) holdsAny(ctx context.Context, prefixes []string) (bool, error) {
	errFound := errors.New("found")
	for _, p := range prefixes {
		err := l.fold.Range(ctx, p, "", func(Entry) error { return errFound })
		if errors.Is(err, errFound) {
			return true, nil
		}
		if err != nil {
			return false, l.foldReadFailed(fmt.Errorf("kvcore: reading fold: %w", err))
		}
	}
	return false, nil
}
