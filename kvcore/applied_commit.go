package kvcore

import (
	"context"
	"fmt"
	"time"
)

// foldUnder folds updates into the fold without moving its cursor. A
// known mark is forgotten first (see forgetMark), and the highest revision
// folded is kept (see recordMark).
func (l *appliedLoop) foldUnder(ctx context.Context, updates []Update, under Cursor) error {
	if len(updates) == 0 {
		return nil
	}
	if err := l.forgetMark(ctx); err != nil {
		return err
	}
	for _, u := range updates {
		if rev, ok := u.Version.Revision(); ok {
			l.foldedUpTo = max(l.foldedUpTo, rev)
		}
	}
	return l.foldApply(ctx, ctx, "fold", updates, under)
}

// foldApply calls the fold's Apply with opCtx until it succeeds, ctx ends,
// or, with MaxFoldFailures, its Apply has failed that many times in a row
// (see foldFailed).
func (l *appliedLoop) foldApply(ctx, opCtx context.Context, step string, updates []Update, cursor Cursor) error {
	return l.retry(ctx, func() error {
		err := l.fold.Apply(opCtx, updates, cursor)
		if err == nil {
			l.applyFailures = 0
			return nil
		}
		return l.foldFailed(&l.applyFailures, fmt.Errorf("%s: %w", step, err))
	})
}

// foldReadFailed counts err, a failed read of the fold that ends the
// session; reads are counted apart from Applies, and until the loop next
// catches up, as a session's Applies may succeed before its read fails
// again.
func (l *appliedLoop) foldReadFailed(err error) error {
	return l.foldFailed(&l.readFailures, err)
}

// foldFailed counts err in *failures: once MaxFoldFailures are in a row it
// wraps ErrFoldFailed, which ends the loop.
func (l *appliedLoop) foldFailed(failures *int, err error) error {
	*failures++
	if n := l.cfg.MaxFoldFailures; n > 0 && *failures >= n {
		return fmt.Errorf("%w (%d failures in a row; AppliedConfig.MaxFoldFailures is %d): %w", ErrFoldFailed, *failures, n, err)
	}
	return err
}

// visible is the batch apply sees: the updates AppliedConfig.Filter
// accepts.
func (l *appliedLoop) visible(b Batch) Batch {
	if l.cfg.Filter == nil {
		return b
	}
	var kept []Update
	for _, u := range b.Updates {
		if l.cfg.Filter(u) {
			kept = append(kept, u)
		}
	}
	b.Updates = kept
	return b
}

// commit runs apply until it succeeds, then moves the fold's cursor. While it
// backs off after a failure it keeps reading the watch: updates that arrive
// are folded (under the unchanged cursor) and appended to the batch, which
// then keeps each key's latest update only, so a change that repairs
// whatever made apply fail reaches the next attempt. It reports whether a
// Synced event arrived meanwhile. atEnd says that b reaches the bucket's
// end as of a Synced event and holds every update folded past the cursor
// (a sync's does not): a first failure then looks for records the bucket
// lost in the fold (see lostAhead).
func (l *appliedLoop) commit(ctx context.Context, wa Watch, b Batch, atEnd bool) (synced bool, err error) {
	under := l.fold.Cursor()
	absorbed, absorbedBytes := 0, 0
	// An attempt that started runs to its end even if ctx is cancelled.
	run := context.WithoutCancel(ctx)
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return synced, err
		}
		view := l.visible(b)
		if !view.Full && len(view.Updates) == 0 {
			break // nothing for apply: the batch only moves the cursor
		}
		err := l.apply(run, view)
		if err == nil {
			break
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			// The loop stops: no failure to count, and the next start
			// applies the batch again.
			l.cfg.Logger.Info("batch not finished: the watch is stopping; the next start finishes it", "scope", l.cfg.Scope.String(), "cursor", l.fold.Cursor().String(), "err", err)
			return synced, ctxErr
		}
		err = fmt.Errorf("apply: %w", err)
		if !l.cfg.NoRetry {
			l.failed(err)
		}
		if attempt == 0 && atEnd {
			if err := l.lostAhead(ctx, under, b); err != nil {
				return synced, err
			}
		}
		if l.cfg.NoRetry {
			return synced, err
		}
		more, sawSynced, err := l.absorb(ctx, wa, attempt, maxRetryGrowth*l.cfg.MaxBatch-absorbed, maxRetryBytes-absorbedBytes)
		if err != nil {
			return synced, err
		}
		synced = synced || sawSynced
		if err := l.markRemovals(ctx, more); err != nil {
			return synced, err
		}
		if err := l.foldUnder(ctx, more, under); err != nil {
			return synced, err
		}
		b.Updates = append(b.Updates, more...)
		for _, u := range more {
			absorbed++
			absorbedBytes += len(u.Key) + len(u.Value)
			if !u.Version.IsUnknown() {
				b.Cursor = CursorAt(u.Version)
			}
		}
		// The retry sees each key's latest update only, which is all a
		// batch guarantees: an earlier value that made the attempt fail
		// (a file over a limit, a disk that was full) must not stand in
		// the way of the change that fixes it.
		b.Updates = latestPerKey(b.Updates)
	}
	// Updates that came while apply ran wait in the watch's buffer: the
	// loop trails the bucket by them at least, however long the batch took.
	// A watch that failed meanwhile (a lost consumer) tells nothing of what
	// came: no recovery is claimed, nor reported (see report), and the loop
	// reports the watch's end next.
	l.progress.Pending = max(l.progress.Pending, queued(wa))
	if wa.Err() == nil {
		l.recovered()
	}
	if b.Cursor != l.fold.Cursor() {
		// The checkpoint of an applied batch is written even during
		// shutdown; only its retries stop with ctx.
		if err := l.foldApply(ctx, run, "checkpoint", nil, b.Cursor); err != nil {
			return synced, err
		}
		l.progress.Cursor = b.Cursor
	}
	// Every applied batch is reported, one that leaves the cursor where it
	// was (a full render, a reconciliation's fixes) too: where it left the
	// loop, and how far behind.
	l.report()
	if l.removalsMarked {
		if err := l.setFolding(ctx, false); err != nil {
			return synced, err
		}
	}
	return synced, nil
}

// latestPerKey returns updates without the ones a later update of the same
// key supersedes, in the order of the updates kept.
func latestPerKey(updates []Update) []Update {
	last := make(map[string]int, len(updates))
	for i, u := range updates {
		last[u.Key] = i
	}
	if len(last) == len(updates) {
		return updates
	}
	kept := make([]Update, 0, len(last))
	for i, u := range updates {
		if last[u.Key] == i {
			kept = append(kept, u)
		}
	}
	return kept
}

// absorb waits out the backoff of a failed attempt, collecting updates from
// the watch meanwhile until room updates or roomBytes bytes are taken.
// synced reports a Synced marker among them; a closed watch ends the wait
// with its error.
func (l *appliedLoop) absorb(ctx context.Context, wa Watch, attempt, room, roomBytes int) (more []Update, synced bool, err error) {
	t := time.NewTimer(l.backoff(attempt))
	defer t.Stop()
	events := wa.Events()
	for {
		if len(more) >= room || roomBytes <= 0 {
			events = nil // full: leave the rest to back-pressure
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-t.C:
			return more, synced, nil
		case ev, ok := <-events:
			if !ok {
				return nil, false, watchEnd(wa)
			}
			if ev.Synced {
				synced = true
				continue
			}
			more = append(more, ev.Update)
			roomBytes -= len(ev.Key) + len(ev.Value)
		}
	}
}
