package kvcore

import (
	"context"
	"fmt"
	"time"
)

// backlogLinger is how long, with no batch window, a resumed watch's
// backlog may go without a record before it is applied without its Synced
// event, and backlogLingerMax how long a batch of it may stay open.
const (
	backlogLinger    = 50 * time.Millisecond
	backlogLingerMax = time.Second
)

// trailingCalm is how long after a batch that trailed the bucket
// (Event.Pending above 0) no update may come before the loop takes itself
// for caught up again: a count taken as the last update of a burst was
// handled may include messages that bring no update (heartbeats).
const trailingCalm = time.Second

// follow batches live (or backlog) updates until the watch ends, and serves
// export requests between batches. caughtUp says whether the watch's
// Synced event was already handled (by sync).
func (l *appliedLoop) follow(ctx context.Context, wa Watch, caughtUp bool) error {
	var pending []Update
	var high Version
	var trailing uint64 // Event.Pending of the last update in pending
	window := time.NewTimer(time.Hour)
	window.Stop()
	defer window.Stop()
	calm := time.NewTimer(time.Hour)
	calm.Stop()
	defer calm.Stop()
	var tick <-chan time.Time
	if l.cfg.Reconcile > 0 {
		t := time.NewTicker(l.cfg.Reconcile)
		defer t.Stop()
		tick = t.C
	}
	// flush applies the open batch; atSynced says a Synced event closed
	// it.
	flush := func(atSynced bool) error {
		window.Stop()
		if len(pending) == 0 && high.IsUnknown() {
			return nil
		}
		under := l.fold.Cursor()
		next := under
		if !high.IsUnknown() {
			next = CursorAt(high)
		}
		b := Batch{Updates: pending, Cursor: next}
		pending, high = nil, Version{}
		l.progress.Pending = trailing
		if trailing > 0 {
			calm.Reset(trailingCalm)
		}
		if err := l.markRemovals(ctx, b.Updates); err != nil {
			return err
		}
		if err := l.foldUnder(ctx, b.Updates, under); err != nil {
			return err
		}
		synced, err := l.commit(ctx, wa, b, caughtUp || atSynced)
		if err == nil && synced {
			caughtUp = true
			err = l.onSynced(ctx, wa)
		}
		return err
	}
	// add takes one update into the open batch and arms what closes it.
	var opened time.Time
	add := func(ev Event) {
		first := len(pending) == 0
		pending = append(pending, ev.Update)
		trailing = ev.Pending
		if !ev.Version.IsUnknown() {
			high = ev.Version
		}
		// quiet closes the batch once no update came for idle, or most
		// after it opened.
		quiet := func(idle, most time.Duration) {
			if first {
				opened = time.Now()
			}
			window.Reset(min(idle, time.Until(opened.Add(most))))
		}
		switch {
		case l.cfg.Quiet.Min > 0:
			quiet(l.cfg.Quiet.Min, l.cfg.Quiet.Max)
		case first && l.cfg.Window > 0:
			window.Reset(l.cfg.Window)
		case l.cfg.Window <= 0 && !caughtUp:
			// No window: the backlog waits for Synced, but not for long
			// if Synced is late (a caught-up check that failed waits
			// for the next heartbeat). A linger counted from the first
			// update split a backlog delivered slower than MaxBatch per
			// linger (as on a loaded host) into batches of whatever had
			// come.
			quiet(backlogLinger, backlogLingerMax)
		}
	}
	// drain takes the updates already delivered, up to MaxBatch, without
	// waiting: a batch that closes takes all of them. It reports a Synced
	// event among them (the updates before it are taken; those after it
	// stay queued).
	drain := func() (synced bool, err error) {
		for len(pending) < l.cfg.MaxBatch {
			select {
			case ev, ok := <-wa.Events():
				if !ok {
					return false, watchEnd(wa)
				}
				if ev.Synced {
					return true, nil
				}
				add(ev)
			default:
				return false, nil
			}
		}
		return false, nil
	}
	// closeBatch drains, flushes, and runs what catching up owes when the
	// drain met the Synced event.
	closeBatch := func() error {
		synced, err := drain()
		if err != nil {
			return err
		}
		if err := flush(synced); err != nil {
			return err
		}
		if synced {
			caughtUp = true
			return l.onSynced(ctx, wa)
		}
		return nil
	}
	exports := l.cfg.Exports
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case req, ok := <-exports:
			if !ok {
				exports = nil // no more requests
				continue
			}
			if err := flush(false); err != nil {
				l.replyExport(req, ExportResult{Err: fmt.Errorf("kvcore: export to %s: applying the batch before it: %w", req.Dir, err)})
				return err
			}
			l.export(ctx, req)
		case <-window.C:
			if err := closeBatch(); err != nil {
				return err
			}
		case <-calm.C:
			if len(pending) == 0 && l.progress.Pending > 0 {
				l.progress.Pending = 0
				l.report()
			}
		case <-tick:
			l.owed |= owedReconcile
			if !caughtUp {
				continue // the Synced event runs it, once the backlog is applied
			}
			if err := flush(false); err != nil {
				return err
			}
			if err := l.onSynced(ctx, wa); err != nil {
				return err
			}
		case ev, ok := <-wa.Events():
			if !ok {
				return watchEnd(wa)
			}
			if ev.Synced {
				caughtUp = true
				if err := flush(true); err != nil {
					return err
				}
				if err := l.onSynced(ctx, wa); err != nil {
					return err
				}
				continue
			}
			add(ev)
			// Until Synced, the backlog present at the start is still
			// arriving: it closes the batch (or MaxBatch does), so a
			// backlog that trickles in is not applied a record at a time.
			immediate := caughtUp && l.cfg.Window < 0 && l.cfg.Quiet.Min <= 0
			if immediate || len(pending) >= l.cfg.MaxBatch {
				if err := closeBatch(); err != nil {
					return err
				}
			}
		}
	}
}

// onSynced runs what is owed once the loop has applied everything up to a
// point where it was caught up: the reconciliation of a resumed session, the
// full render FullRender asks for, and the caught-up report.
func (l *appliedLoop) onSynced(ctx context.Context, wa Watch) error {
	if l.owed&owedReconcile != 0 {
		if err := l.reconcileKeys(ctx, wa); err != nil {
			return err
		}
	}
	if l.owed&owedFullRender != 0 {
		if _, err := l.commit(ctx, wa, Batch{Full: true, Cursor: l.fold.Cursor()}, true); err != nil {
			return err
		}
		l.owed &^= owedFullRender
	}
	l.caughtUp(wa)
	return nil
}
