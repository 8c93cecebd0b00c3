package kvcore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
)

// reconcileKeys deletes from the fold, and hands apply as a batch, the keys
// the bucket no longer has. The fold is at its cursor C (everything folded
// was applied) and the listing is taken after C, so a key of the fold
// missing from it was deleted at or before the listing: a synthetic delete
// agrees with the bucket, and a key re-created later arrives as a put. A
// live key the fold lacks (one the bucket holds at a revision the fold
// passed without it: a server that lost a purge brings a purged record
// back) gets a put of the bucket's entry in the same batch.
//
// When the bucket's mark shows it unchanged since the fold last matched it,
// there is nothing to list (see [AppliedConfig.OnMark]).
func (l *appliedLoop) reconcileKeys(ctx context.Context, wa Watch) error {
	pre := l.readMark(ctx)
	if l.unchanged(pre) {
		l.owed &^= owedReconcile
		return nil
	}
	live := make(map[string]bool) // whether the fold holds the key
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
			live[k] = false
		}
	}
	stale, err := l.compareKeys(ctx, live)
	if err != nil {
		return err
	}
	fixes, err := l.staleDeletes(ctx, stale)
	if err != nil {
		return err
	}
	puts, err := l.missingPuts(ctx, live)
	if err != nil {
		return err
	}
	fixes = append(fixes, puts...)
	l.owed &^= owedReconcile
	if len(fixes) > 0 {
		if err := l.foldUnder(ctx, fixes, l.fold.Cursor()); err != nil {
			return err
		}
		if _, err := l.commit(ctx, wa, Batch{Updates: fixes, Cursor: l.fold.Cursor()}); err != nil {
			return err
		}
	}
	l.recordMark(ctx, pre)
	return nil
}

// compareKeys returns the keys the fold holds under the scope that live
// lacks, sorted and without duplicates, and marks in live the ones the fold
// holds.
func (l *appliedLoop) compareKeys(ctx context.Context, live map[string]bool) ([]string, error) {
	stale, err := staleKeys(ctx, l.fold, l.cfg.Scope.List(), func(k string) bool {
		_, ok := live[k]
		if ok {
			live[k] = true
		}
		return ok
	})
	if err != nil {
		return nil, fmt.Errorf("kvcore: listing fold keys: %w", err)
	}
	return stale, nil
}

// staleDeletes returns synthetic deletes (unknown version) for the stale
// keys, those the fold holds under the scope that the listing lacks, that
// the source confirms are gone: a listing taken while the bucket changes
// may miss a live key, and deleting it would be worse than keeping a stale
// one until the next reconciliation. A listing also leaves out keys whose
// value is empty, which are live keys too. A key that exists with another
// value than the fold's gets a put of the bucket's current entry instead.
func (l *appliedLoop) staleDeletes(ctx context.Context, stale []string) ([]Update, error) {
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

// missingPuts returns puts of the bucket's current entries for the listed
// keys the fold does not hold (false in live), in key order. A key deleted
// since the listing is left to the watch, which delivers its delete.
func (l *appliedLoop) missingPuts(ctx context.Context, live map[string]bool) ([]Update, error) {
	var missing []string
	for k, held := range live {
		if !held {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	var puts []Update
	for _, k := range missing {
		e, err := l.src.Entry(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnsupported):
			continue
		case err != nil:
			return nil, fmt.Errorf("kvcore: reading %q, which the fold lacks: %w", k, err)
		}
		puts = append(puts, Update{Op: OpPut, Key: k, Value: e.Value, Version: e.Version})
	}
	if len(puts) > 0 {
		l.cfg.Logger.Warn("adding keys the bucket holds at revisions the fold passed without them", "scope", l.cfg.Scope.String(), "keys", len(puts))
	}
	return puts, nil
}
