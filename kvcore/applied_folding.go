package kvcore

import "context"

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
// A batch folded past the cursor is delivered again by a resume, unless the
// bucket lost its records meanwhile; a delete among them would then leave
// the fold without the key and its output in place, and no listing could
// tell. A batch's commit is over in moments, but one whose apply fails
// stays folded for as long as it fails, so its first failure sets the mark
// too, and its commit clears it.

// setFolding persists that the loop starts (true) or ended (false) a fold
// of records at or before its cursor, retrying a failure with backoff.
func (l *appliedLoop) setFolding(ctx context.Context, on bool) error {
	if l.cfg.OnFolding == nil || l.folding == on {
		return nil
	}
	if err := l.retry(ctx, func() error { return l.cfg.OnFolding(ctx, on) }); err != nil {
		return err
	}
	l.folding = on
	return nil
}
