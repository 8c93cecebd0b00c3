package kvcore

import (
	"context"
	"log/slog"
)

// failuresLoggedAsErrors is how many failures in a row are logged at
// warning level before the next ones are errors: a blip retries quietly,
// a loop that keeps failing (a full disk, a missing permission) shows
// where errors are looked for.
const failuresLoggedAsErrors = 5

// failed reports a failure that is being retried.
func (l *appliedLoop) failed(err error) {
	l.progress.Err = err
	l.progress.Failures++
	level, msg := slog.LevelWarn, "watch step failed; retrying"
	if l.progress.Failures >= failuresLoggedAsErrors {
		level, msg = slog.LevelError, "watch step keeps failing; retrying"
	}
	l.cfg.Logger.Log(context.Background(), level, msg, "scope", l.cfg.Scope.String(), "cursor", l.fold.Cursor().String(), "failures", l.progress.Failures, "err", err)
	l.report()
}

// recovered clears a reported failure once its step succeeded, saying so
// once (each failure was logged, at WARN or ERROR).
func (l *appliedLoop) recovered() {
	if l.progress.Err != nil {
		l.cfg.Logger.Info("recovered", "scope", l.cfg.Scope.String(), "cursor", l.fold.Cursor().String(), "failures", l.progress.Failures)
		l.progress.Err, l.progress.Failures = nil, 0
		l.report()
	}
}

// caughtUp reports that the loop has applied everything it saw catching up,
// and trails the bucket only by the updates wa delivered since, which wait
// in its buffer (nothing while wa has failed). Getting there is also a recovery: a session that ended with
// an error (a lost watch, an expired cursor) and was reopened has nothing
// else to clear that error when no change follows.
func (l *appliedLoop) caughtUp(wa Watch) {
	if wa.Err() != nil {
		// The watch failed meanwhile (a lost consumer): what came since
		// is unknown, and the loop reports the watch's end next.
		return
	}
	l.readFailures = 0
	l.recovered()
	pending := queued(wa)
	if !l.progress.Synced || l.progress.Pending != pending {
		if !l.progress.Synced {
			l.cfg.Logger.Info("caught up", "scope", l.cfg.Scope.String(), "cursor", l.fold.Cursor().String())
		}
		l.progress.Synced, l.progress.Pending = true, pending
		l.report()
	}
}

// queued is how many events wa delivered that the loop has not taken yet:
// updates that came while a batch was applied, at most one of them an
// event that carries none (the end of a backlog).
func queued(wa Watch) uint64 {
	return uint64(len(wa.Events()))
}

// report passes the loop's progress to OnProgress, but not a report
// without an error while the session's watch has failed: it would take the
// loop for current (a step that recovered meanwhile, a checkpoint), while
// what came since is unknown; the watch's failure is reported next.
func (l *appliedLoop) report() {
	if l.cfg.OnProgress == nil {
		return
	}
	if l.progress.Err == nil && l.current != nil && l.current.Err() != nil {
		return
	}
	l.cfg.OnProgress(l.progress)
}
