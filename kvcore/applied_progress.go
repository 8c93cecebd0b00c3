package kvcore

// failed reports a failure that is being retried.
func (l *appliedLoop) failed(err error) {
	l.progress.Err = err
	l.progress.Failures++
	l.cfg.Logger.Warn("watch step failed; retrying", "scope", l.cfg.Scope.String(), "cursor", l.fold.Cursor().String(), "failures", l.progress.Failures, "err", err)
	l.report()
}

// recovered clears a reported failure once its step succeeded.
func (l *appliedLoop) recovered() {
	if l.progress.Err != nil {
		l.progress.Err, l.progress.Failures = nil, 0
		l.report()
	}
}

// caughtUp reports that the loop has applied everything it saw catching up.
// Getting there is also a recovery: a session that ended with an error (a
// lost watch, an expired cursor) and was reopened has nothing else to clear
// that error when no change follows.
func (l *appliedLoop) caughtUp() {
	l.recovered()
	if !l.progress.Synced || l.progress.Pending > 0 {
		if !l.progress.Synced {
			l.cfg.Logger.Info("caught up", "scope", l.cfg.Scope.String(), "cursor", l.fold.Cursor().String())
		}
		l.progress.Synced, l.progress.Pending = true, 0
		l.report()
	}
}

func (l *appliedLoop) report() {
	if l.cfg.OnProgress != nil {
		l.cfg.OnProgress(l.progress)
	}
}
