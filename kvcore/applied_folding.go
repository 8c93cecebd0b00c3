package kvcore

import (
	"context"
	"slices"
)

// A sync folds the bucket's state, and a reconciliation its fixes, under the
// cursor from before, at or before which no watch delivers records again:
// were the loop to stop between that fold and its commit, a resume from the
// cursor would leave them folded but never applied. While the cursor is
// expired (or of another incarnation) the next session syncs anyway; but a
// bucket that went back in time reuses its revisions, and the cursor looks
// valid again. So the loop marks such a fold durably through
// AppliedConfig.OnFolding, and a session that starts with the mark set (the
// first one of a loop started with AppliedConfig.Folding, or the next one
// after a session that ended between the fold and its commit) syncs. The
// cursor stays as it was: one of none means that nothing was ever applied
// (the agent's deletion guard reads it so).
//
// Records folded past the cursor are delivered again by a resume, unless
// the bucket lost them meanwhile. A lost put shows in the next listing (a
// key the bucket lacks, or holds at an older revision), but a lost delete
// leaves the key out of both the fold and the bucket, its output in place,
// and nothing to tell: a batch whose apply fails stays folded for as long
// as it fails, or a mass deletion for as long as the agent holds it. So
// removals folded past the cursor are marked too, before they are folded,
// and the commit that moves the cursor past them clears the mark.

// setFolding persists that the loop starts (true) or ended (false) a fold
// that a resume may not deliver again, retrying a failure with backoff.
func (l *appliedLoop) setFolding(ctx context.Context, on bool) error {
	if l.cfg.OnFolding == nil || l.folding == on {
		return nil
	}
	if err := l.retry(ctx, func() error { return l.cfg.OnFolding(ctx, on) }); err != nil {
		return err
	}
	l.folding = on
	if !on {
		l.removalsMarked = false
	}
	return nil
}

// markRemovals sets the mark before updates holding a removal are folded
// past the cursor, unless it is set already; the commit that moves the
// cursor past them clears it.
func (l *appliedLoop) markRemovals(ctx context.Context, updates []Update) error {
	if l.folding || !slices.ContainsFunc(updates, Update.IsRemoval) {
		return nil
	}
	if err := l.setFolding(ctx, true); err != nil {
		return err
	}
	l.removalsMarked = l.folding
	return nil
}
