package kvcore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// mode is how a session of the loop reads the bucket.
type mode uint8

const (
	// modeResume opens a delta watch from the fold's cursor and reconciles
	// the fold's keys with the bucket's once caught up.
	modeResume mode = iota
	// modeSync opens a state-sync watch, folds the whole state, deletes
	// what vanished, and applies one full batch. A fold without a cursor
	// always syncs.
	modeSync
)

// owed is work the loop owes once it has caught up with the bucket.
type owed uint8

const (
	// owedReconcile: compare the fold's keys with the bucket's listing.
	owedReconcile owed = 1 << iota
	// owedFullRender: hand apply one full batch (AppliedConfig.FullRender).
	owedFullRender
)

// appliedLoop is the state of one WatchApplied call. Only its goroutine
// touches it.
type appliedLoop struct {
	src   Source
	fold  Fold
	cfg   AppliedConfig
	apply ApplyFunc

	// next is how the next session starts: modeSync after the cursor
	// expired or the bucket's identity changed, until a sync succeeds.
	next mode
	// owed is what the loop owes once caught up.
	owed owed
	// current is the session's watch (nil between sessions): while it has
	// failed, no report says the loop is well (see report).
	current Watch
	// foldedUpTo is the highest revision this loop folded (see
	// recordMark).
	foldedUpTo uint64
	// expiries counts consecutive sessions that ended with ErrCursorExpired.
	expiries int
	// applyFailures counts consecutive failures of the fold's Apply, and
	// readFailures the sessions in a row that a read of the fold ended
	// before the loop caught up (foldFailed).
	applyFailures, readFailures int

	// ident is the source's identity, nil when the check is not armed.
	// knownID is the identity the fold's cursor was taken from, sessionID
	// the one the current session attached to.
	ident              BucketIdentifier
	knownID, sessionID string

	// marker is the source's mark reader, nil when not armed; knownMark
	// is the mark OnMark last persisted.
	marker    BucketMarker
	knownMark string

	// folding is what OnFolding last persisted (see applied_folding.go);
	// removalsMarked says that markRemovals set it, for live removals the
	// next commit clears it for.
	folding, removalsMarked bool

	// resumedFrom is the fold's cursor when the current session attached
	// (none for a sync): what the fold holds up to it may predate a bucket
	// that went back in time, what came after came from the bucket as it
	// is (see sameRevision).
	resumedFrom Cursor
	// unreconciledFrom is resumedFrom of the earliest session since the
	// last reconciliation: a session whose watch failed before it
	// reconciled (see reconcileKeys) leaves what the fold held before it
	// unchecked, and the next session checks that too.
	unreconciledFrom Cursor
	// savedUnreconciled is what OnUnreconciled last persisted.
	savedUnreconciled Cursor

	progress Progress
}

func newAppliedLoop(src Source, fold Fold, cfg AppliedConfig, apply ApplyFunc) *appliedLoop {
	l := &appliedLoop{src: src, fold: fold, cfg: cfg, apply: apply, knownID: cfg.BucketID}
	if id, ok := src.(BucketIdentifier); ok && cfg.OnBucketID != nil {
		l.ident = id
	}
	if m, ok := src.(BucketMarker); ok && cfg.OnMark != nil {
		l.marker, l.knownMark = m, cfg.Mark
	}
	if cfg.FullRender {
		l.owed |= owedFullRender
	}
	// A fold a resume may not deliver again was not committed: the first
	// session syncs (see session).
	l.folding = cfg.Folding
	// A session before this loop may have left the fold unreconciled.
	if !cfg.Unreconciled.IsNone() {
		l.unreconciledFrom, l.owed = cfg.Unreconciled, l.owed|owedReconcile
	}
	l.savedUnreconciled = cfg.Unreconciled
	l.progress.Cursor = fold.Cursor()
	return l
}

// errWatchEnded reports a watch whose event stream closed without an error
// while the loop still wanted it.
var errWatchEnded = errors.New("kvcore: watch ended unexpectedly")

// run runs sessions until ctx is done or an error no retry can cure.
func (l *appliedLoop) run(ctx context.Context) error {
	l.report()
	attempt := 0
	for {
		before, started := l.fold.Cursor(), time.Now()
		err := l.session(ctx)
		if time.Since(started) >= stableSession {
			l.expiries = 0
		}
		if ctx.Err() != nil {
			return nil
		}
		if isFatal(err) {
			return fmt.Errorf("kvcore: watch applied: %w", err)
		}
		if errors.Is(err, ErrCursorExpired) {
			// Retention passed the cursor, or the cursor belongs to another
			// incarnation of the bucket: start over from the bucket's
			// current state; the sync deletes what vanished meanwhile.
			msg, level := "cursor expired; resyncing from the current state", slog.LevelWarn
			switch {
			case errors.Is(err, errBucketUnrecorded):
				// State from before identities were kept (an upgrade), or
				// a stop between a sync's commit and OnBucketID.
				msg, level = "no bucket identity was recorded with the fold's cursor (state from an older version, or a stop before it was recorded); resyncing from the bucket's current state once, to be sure it was not replaced", slog.LevelInfo
			case errors.Is(err, errBucketReplaced):
				msg = "the bucket was replaced since the fold's cursor was taken; resyncing from its current state"
			case errors.Is(err, ErrOutOfStep):
				// Acknowledged writes were lost: worth an operator's look.
				msg, level = "the bucket went back in time: it lost records it had acknowledged (a server store restored from an older copy, or an unsynced tail lost in a crash); resyncing from its current state", slog.LevelError
			}
			l.cfg.Logger.Log(ctx, level, msg, "scope", l.cfg.Scope.String(), "cursor", l.fold.Cursor().String(), "bucket_id", l.knownID, "err", err)
			l.next = modeSync
			if l.expiries++; l.expiries < expiriesBeforeBackoff {
				continue
			}
		}
		if l.cfg.NoRetry {
			return fmt.Errorf("kvcore: watch applied: %w", err)
		}
		if l.fold.Cursor() != before {
			attempt = 0
		}
		l.failed(err)
		if !l.sleep(ctx, attempt) {
			return nil
		}
		attempt++
	}
}

// isFatal reports errors that no retry can cure: a configuration error,
// or a fold that failed AppliedConfig.MaxFoldFailures times in a row.
func isFatal(err error) bool {
	return errors.Is(err, ErrEmptyScope) || errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrInvalidBucket) ||
		errors.Is(err, ErrFoldFailed)
}

// session runs one watch until it ends and returns why it ended.
func (l *appliedLoop) session(ctx context.Context) error {
	m, from := l.next, l.fold.Cursor()
	if from.IsNone() || l.folding {
		// Nothing applied yet, or a fold that a session left uncommitted
		// and a resume may not deliver again (a sync, a reconciliation's
		// fixes, removals past the cursor; see applied_folding.go).
		m = modeSync
	}
	if m == modeSync {
		from = Cursor{}
	}
	l.resumedFrom = from
	if m == modeSync || l.owed&owedReconcile == 0 || l.unreconciledFrom.IsNone() {
		l.unreconciledFrom = from
	}
	// A sync checks everything once committed, not before: until then a
	// restart must still check what the earliest session left.
	if m != modeSync {
		if err := l.saveUnreconciled(ctx); err != nil {
			return err
		}
	}
	var pre bucketMark
	if m == modeSync {
		pre = l.readMark(ctx) // before the watch: see recordMark
	}
	wa, err := l.attach(ctx, from)
	if err != nil {
		return err
	}
	defer wa.Stop()
	l.current = wa
	defer func() { l.current = nil }()
	if m == modeSync {
		if err := l.sync(ctx, wa, pre); err != nil {
			return err
		}
		l.next = modeResume
		if err := l.saveUnreconciled(ctx); err != nil {
			return err
		}
	} else {
		l.owed |= owedReconcile
	}
	return l.follow(ctx, wa, m == modeSync)
}

// watchEnd turns a closed event stream into the error that ended it.
func watchEnd(wa Watch) error {
	if err := wa.Err(); err != nil {
		return err
	}
	return errWatchEnded
}
