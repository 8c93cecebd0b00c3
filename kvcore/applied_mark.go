package kvcore

import (
	"context"
	"fmt"
)

// bucketMark is one reading of the bucket's mark ([BucketMarker]); the
// zero value is no reading.
type bucketMark struct {
	mark string
	at   Cursor
}

// readMark reads the bucket's mark, or nothing when the check is not armed
// or the read fails (the loop then lists the keys, as without a mark).
func (l *appliedLoop) readMark(ctx context.Context) bucketMark {
	if l.marker == nil {
		return bucketMark{}
	}
	mark, at, err := l.marker.BucketMark(ctx)
	if err != nil {
		l.cfg.Logger.Debug("cannot read the bucket's mark; listing its keys", "scope", l.cfg.Scope.String(), "err", err)
		return bucketMark{}
	}
	return bucketMark{mark, at}
}

// unchanged reports whether m shows the bucket exactly as it was when the
// fold last matched it, with the fold at its latest record.
func (l *appliedLoop) unchanged(m bucketMark) bool {
	return m.mark != "" && m.mark == l.knownMark && m.at == l.fold.Cursor()
}

// recordMark persists pre, a mark read before a sync or a listing that
// left the fold matching the bucket as of that reading, if the bucket did
// not change since (a second reading agrees) and the fold is at its latest
// record. Without the second reading a record added and removed meanwhile,
// which the fold may hold, would go unnoticed. Nor is it recorded while
// the fold holds a record past its cursor (a sync's or a reconciliation's
// fix that took a key's current entry): the bucket may go back to the
// mark without it (a store restored from a copy taken then), and a
// reconciliation skipped on the mark would keep it for ever.
func (l *appliedLoop) recordMark(ctx context.Context, pre bucketMark) {
	if pre.mark == "" || pre.mark == l.knownMark || pre.at != l.fold.Cursor() {
		return
	}
	if at, _ := l.fold.Cursor().Revision(); l.foldedUpTo > at {
		return
	}
	if now := l.readMark(ctx); now != pre {
		return
	}
	if err := l.cfg.OnMark(ctx, pre.mark); err != nil {
		l.cfg.Logger.Warn("cannot record the bucket's mark; the next reconciliation lists its keys", "scope", l.cfg.Scope.String(), "err", err)
		return
	}
	l.knownMark = pre.mark
}

// forgetMark forgets the known mark, durably, before the fold takes
// records its cursor does not cover yet: a bucket that goes back in time
// to exactly the mark (a store restored from a copy taken then) no longer
// holds records a failed batch left folded ahead of the cursor, and a
// reconciliation skipped on the mark would keep them for ever.
func (l *appliedLoop) forgetMark(ctx context.Context) error {
	if l.knownMark == "" {
		return nil
	}
	if err := l.cfg.OnMark(ctx, ""); err != nil {
		return fmt.Errorf("forgetting the bucket's mark before folding: %w", err)
	}
	l.knownMark = ""
	return nil
}
