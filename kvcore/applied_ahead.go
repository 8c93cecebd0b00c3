package kvcore

import (
	"context"
	"errors"
	"fmt"
)

// lostAhead finds what a batch abandoned in an earlier session may leave
// in the fold: records folded ahead of the cursor that the bucket lost
// since (its server's store restored from an older copy), whose revisions
// it may have given to new records. The next session's watch never
// delivers them again, so nothing replaces them, and an apply that fails
// on one of them (a value the plugin refuses) would fail for ever. It is
// called for a batch b folded over the cursor under that reaches the
// bucket's end as of a Synced event: b then holds the latest record of
// every key the bucket changed past under, so a fold entry past under that
// b does not hold at the same revision is one of those lost records. It
// fails with ErrOutOfStep (wrapped in [ErrCursorExpired]: the loop
// resyncs) when it finds one.
func (l *appliedLoop) lostAhead(ctx context.Context, under Cursor, b Batch) error {
	from, _ := under.Revision()
	delivered := make(map[string]uint64, len(b.Updates))
	for _, u := range b.Updates {
		if rev, ok := u.Version.Revision(); ok {
			delivered[u.Key] = rev
		}
	}
	errFound := errors.New("found")
	var lost Entry
	for _, p := range l.cfg.Scope.List() {
		err := l.fold.Range(ctx, p, "", func(e Entry) error {
			if rev, ok := e.Version.Revision(); ok && rev > from && delivered[e.Key] != rev {
				lost = e
				return errFound
			}
			return nil
		})
		if errors.Is(err, errFound) {
			rev, _ := lost.Version.Revision()
			return fmt.Errorf("%w: %w: key %q is at revision %d in the fold, past its cursor (revision %d), and the bucket no longer has that record: a batch folded before the bucket lost it", ErrCursorExpired, ErrOutOfStep, lost.Key, rev, from)
		}
		if err != nil {
			return l.foldReadFailed(fmt.Errorf("kvcore: looking for records the bucket lost in the fold: %w", err))
		}
	}
	return nil
}
