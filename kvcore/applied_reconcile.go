package kvcore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// reconcileKeys deletes from the fold, and hands apply as a batch, the keys
// the bucket no longer has. The fold is at its cursor C (everything folded
// was applied) and the listing is taken after C, so a key of the fold
// missing from it was deleted at or before the listing: a synthetic delete
// agrees with the bucket, and a key re-created later arrives as a put.
//
// When the bucket's mark shows it unchanged since the fold last matched it,
// there is nothing to list (see [AppliedConfig.OnMark]).
func (l *appliedLoop) reconcileKeys(ctx context.Context, wa Watch) error {
	pre := l.readMark(ctx)
	if l.unchanged(pre) {
		l.owed &^= owedReconcile
		return nil
	}
	live := make(map[string]struct{})
	for _, p := range l.cfg.Scope.List() {
		keys, err := l.src.Keys(ctx, p)
		if errors.Is(err, ErrUnsupported) {
			l.cfg.Logger.Warn("the source cannot list keys; deletions whose markers expired go unnoticed", "scope", l.cfg.Scope.String())
			l.owed &^= owedReconcile
			return nil
		}
		if err != nil {
			return fmt.Errorf("kvcore: reconcile: listing live keys under %q: %w", p, err)
		}
		for _, k := range keys {
			live[k] = struct{}{}
		}
	}
	deletes, err := l.staleDeletes(ctx, live)
	if err != nil {
		return err
	}
	l.owed &^= owedReconcile
	if len(deletes) > 0 {
		if err := l.foldUnder(ctx, deletes, l.fold.Cursor()); err != nil {
			return err
		}
		if _, err := l.commit(ctx, wa, Batch{Updates: deletes, Cursor: l.fold.Cursor()}); err != nil {
			return err
		}
	}
	l.recordMark(ctx, pre)
	return nil
}

// staleDeletes returns synthetic deletes (unknown version) for the keys the
// fold holds under the scope that are not in live and that the source
// confirms are gone: a listing taken while the bucket changes may miss a
// live key, and deleting it would be worse than keeping a stale one until
// the next reconciliation. A listing also leaves out keys whose value is
// empty, which are live keys too. A key that exists with another value than
// the fold's gets a put of the bucket's current entry instead.
func (l *appliedLoop) staleDeletes(ctx context.Context, live map[string]struct{}) ([]Update, error) {
	stale, err := StaleKeys(ctx, l.fold, l.cfg.Scope.List(), live)
	if err != nil {
		return nil, fmt.Errorf("kvcore: listing fold keys: %w", err)
	}
	var deletes []Update
	for _, k := range stale {
		e, err := l.src.Entry(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnsupported):
			deletes = append(deletes, Update{Op: OpDelete, Key: k})
		case err != nil:
			return nil, fmt.Errorf("kvcore: confirming that %q is gone: %w", k, err)
		default:
			// The key exists (the listing missed it, or leaves out empty
			// values). The fold's entry may be stale (a value of a replaced
			// bucket, or one overwritten since the listing): the bucket's
			// current one replaces it, ahead of the cursor; the watch
			// delivers it again later, which is harmless.
			if cur, err := l.fold.Get(k); err == nil && cur.Version == e.Version && bytes.Equal(cur.Value, e.Value) {
				continue
			}
			l.cfg.Logger.Info("a key missing from the bucket's listing exists with another value; taking the bucket's", "key", k)
			deletes = append(deletes, Update{Op: OpPut, Key: k, Value: e.Value, Version: e.Version})
		}
	}
	if len(deletes) > 0 {
		l.cfg.Logger.Info("removing keys that vanished from the bucket", "scope", l.cfg.Scope.String(), "keys", len(deletes))
	}
	return deletes, nil
}
