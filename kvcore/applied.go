package kvcore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Batch is one unit of work [WatchApplied] hands to its [ApplyFunc].
type Batch struct {
	// Updates are the batch's changes in version order. The fold already
	// holds them when apply runs, so reading the fold gives the state as of
	// after this batch.
	//
	// In a full batch the applier renders from the fold, and Updates only
	// inform: they hold the delete and purge markers the sync delivered,
	// synthetic deletes (unknown version) for keys the fold held that
	// vanished from the bucket while nobody watched, and any update that
	// arrived while the batch was being retried. The puts of the sync itself
	// are not listed.
	Updates []Update
	// Full asks the applier to make its outputs reflect the whole fold. It is
	// set after an initial sync, after a resync that followed
	// [ErrCursorExpired], and once after catching up when
	// [AppliedConfig.FullRender] asks for it.
	Full bool
	// Cursor is the position the fold moves to once apply returns nil.
	Cursor Cursor
}

// ApplyFunc applies a batch: it turns the changes into effects (files, hooks)
// and returns nil only once they are committed. It must be idempotent:
// delivery is at-least-once, and a batch whose apply failed, or whose
// checkpoint a crash prevented, is delivered again. A failed batch is retried
// with the updates that arrived meanwhile appended to it, so a later change
// that fixes what made it fail gets through.
type ApplyFunc func(ctx context.Context, b Batch) error

// Progress is a snapshot of a [WatchApplied] loop's state, passed to
// [AppliedConfig.OnProgress].
type Progress struct {
	// Cursor is the fold's committed cursor.
	Cursor Cursor
	// Synced is true once the loop has caught up with the bucket and applied
	// everything it saw doing so.
	Synced bool
	// Err is the failure being retried; nil after the next success.
	Err error
	// Failures counts consecutive failures.
	Failures int
}

// AppliedConfig configures [WatchApplied]. Only Scope is required.
type AppliedConfig struct {
	Scope Scope
	// Window is how long a batch stays open after its first update
	// (default 10ms). Catching up (the Synced event) closes it at once.
	Window time.Duration
	// MaxBatch closes a batch early at this many updates (default 100).
	MaxBatch int
	// FullRender makes the loop hand apply one full batch after it first
	// catches up, even when resuming from a cursor (e.g. because the
	// plugin or its configuration changed since the cursor was written).
	FullRender bool
	// MinBackoff and MaxBackoff bound the jittered exponential backoff
	// between retries of a failed step (defaults 100ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// OnProgress, if set, is called from the loop's goroutine after every
	// checkpoint, after catching up and after every failure. It must not
	// block.
	OnProgress func(Progress)
	// Logger receives the loop's logs (default slog.Default()).
	Logger *slog.Logger
}

func (c AppliedConfig) withDefaults() AppliedConfig {
	if c.Window <= 0 {
		c.Window = 10 * time.Millisecond
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 100
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(30*time.Second, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// syncChunk is how many updates of an initial sync are folded per Apply.
const syncChunk = 4096

// maxRetryGrowth bounds how large (in multiples of MaxBatch) a failing batch
// may grow by absorbing newer updates while it is retried; past it the
// watch is left to back-pressure.
const maxRetryGrowth = 16

// errWatchEnded reports a watch whose event stream closed without an error
// while the loop still wanted it.
var errWatchEnded = errors.New("kvcore: watch ended unexpectedly")

// WatchApplied keeps fold in sync with the keys of cfg.Scope and hands every
// change to apply, advancing the fold's cursor only after apply returned nil.
// It runs until ctx is done and then returns nil; it returns early only for a
// configuration error such as an empty scope.
//
// A fold with a cursor resumes with a delta watch from that cursor. A fold
// without one, or whose cursor the bucket no longer retains
// ([ErrCursorExpired]), is synced from the bucket's current state: the whole
// state is folded first, keys that vanished are deleted, and only then is apply
// called, once, with a full batch — a plugin never sees a half-finished sync as
// if it were the whole bucket.
//
// Each batch goes through three durable steps: the updates are folded under
// the previous cursor (the fold may hold data ahead of its cursor), apply
// runs, and the new cursor is committed. A crash between any two steps loses
// nothing: the restarted loop resumes from the fold's cursor and delivers the
// batch again. A failed step is retried, with the same batch, after a jittered
// exponential backoff; a failed watch is reopened from the fold's cursor (never
// from an in-memory position).
//
// WatchApplied owns fold while it runs: nothing else may call its Apply.
func WatchApplied(ctx context.Context, w Watcher, fold Fold, cfg AppliedConfig, apply ApplyFunc) error {
	if err := cfg.Scope.Validate(); err != nil {
		return fmt.Errorf("kvcore: watch applied: %w", err)
	}
	l := &appliedLoop{w: w, fold: fold, cfg: cfg.withDefaults(), apply: apply}
	l.fullPending = cfg.FullRender
	l.progress.Cursor = fold.Cursor()
	attempt := 0
	for {
		before := l.fold.Cursor()
		err := l.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case errors.Is(err, ErrCursorExpired):
			// Retention passed the cursor: start over from the bucket's
			// current state; the sync deletes what vanished meanwhile.
			l.cfg.Logger.Warn("cursor expired; resyncing from the current state", "scope", l.cfg.Scope.String(), "cursor", l.fold.Cursor().String(), "err", err)
			l.resync = true
			continue
		case errors.Is(err, ErrEmptyScope):
			return fmt.Errorf("kvcore: watch applied: %w", err)
		}
		if l.fold.Cursor() != before {
			attempt = 0
		}
		l.failed("watch", err)
		if !l.sleep(ctx, attempt) {
			return nil
		}
		attempt++
	}
}

type appliedLoop struct {
	w     Watcher
	fold  Fold
	cfg   AppliedConfig
	apply ApplyFunc

	progress    Progress
	fullPending bool // a full batch is owed once the loop catches up
	resync      bool // the next session must sync from the current state
}

// session runs one watch until it ends and returns why it ended.
func (l *appliedLoop) session(ctx context.Context) error {
	from := l.fold.Cursor()
	if l.resync {
		from = Cursor{}
	}
	wa, err := l.w.Watch(ctx, l.cfg.Scope, from)
	if err != nil {
		return err
	}
	defer wa.Stop()
	if from.IsNone() {
		if err := l.sync(ctx, wa); err != nil {
			return err
		}
		l.resync = false
	}
	return l.follow(ctx, wa)
}

// sync folds a state-sync watch's initial state, deletes the keys it lacks,
// and applies one full batch.
func (l *appliedLoop) sync(ctx context.Context, wa Watch) error {
	prefixes := l.cfg.Scope.List()
	held, err := l.holdsAny(ctx, prefixes)
	if err != nil {
		return err
	}
	var seen map[string]struct{}
	if held {
		seen = make(map[string]struct{})
	}
	under := l.fold.Cursor() // unchanged until the full batch is applied
	var removed, chunk []Update
	var high Version
	foldChunk := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := l.retry(ctx, "fold", func() error { return l.fold.Apply(ctx, chunk, under) })
		chunk = nil
		return err
	}
	for synced := false; !synced; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-wa.Events():
			if !ok {
				return watchEnd(wa)
			}
			if ev.Synced {
				synced = true
				break
			}
			if !ev.Version.IsUnknown() {
				high = ev.Version
			}
			if seen != nil {
				seen[ev.Key] = struct{}{}
			}
			if ev.IsRemoval() {
				removed = append(removed, ev.Update)
			}
			chunk = append(chunk, ev.Update)
			if len(chunk) >= syncChunk {
				if err := foldChunk(); err != nil {
					return err
				}
			}
		}
	}
	if err := foldChunk(); err != nil {
		return err
	}
	if held {
		stale, err := StaleKeys(ctx, l.fold, prefixes, seen)
		if err != nil {
			return fmt.Errorf("kvcore: resync: listing fold keys: %w", err)
		}
		for _, k := range stale {
			chunk = append(chunk, Update{Op: OpDelete, Key: k})
		}
		removed = append(removed, chunk...)
		if len(stale) > 0 {
			l.cfg.Logger.Info("resync removed keys that vanished from the bucket", "scope", l.cfg.Scope.String(), "keys", len(stale))
		}
		if err := foldChunk(); err != nil {
			return err
		}
	}
	next := under
	if !high.IsUnknown() {
		next = CursorAt(high)
	}
	l.fullPending = false
	if err := l.commit(ctx, wa, Batch{Updates: removed, Full: true, Cursor: next}); err != nil {
		return err
	}
	l.caughtUp()
	return nil
}

// holdsAny reports whether the fold has an entry under any of prefixes.
func (l *appliedLoop) holdsAny(ctx context.Context, prefixes []string) (bool, error) {
	errFound := errors.New("found")
	for _, p := range prefixes {
		err := l.fold.Range(ctx, p, "", func(Entry) error { return errFound })
		if errors.Is(err, errFound) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("kvcore: reading fold: %w", err)
		}
	}
	return false, nil
}

// follow batches live (or backlog) updates until the watch ends.
func (l *appliedLoop) follow(ctx context.Context, wa Watch) error {
	var pending []Update
	var high Version
	window := time.NewTimer(time.Hour)
	window.Stop()
	defer window.Stop()
	flush := func() error {
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
		if err := l.retry(ctx, "fold", func() error { return l.fold.Apply(ctx, b.Updates, under) }); err != nil {
			return err
		}
		return l.commit(ctx, wa, b)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-window.C:
			if err := flush(); err != nil {
				return err
			}
		case ev, ok := <-wa.Events():
			if !ok {
				return watchEnd(wa)
			}
			if ev.Synced {
				if err := flush(); err != nil {
					return err
				}
				if l.fullPending {
					l.fullPending = false
					if err := l.commit(ctx, wa, Batch{Full: true, Cursor: l.fold.Cursor()}); err != nil {
						return err
					}
				}
				l.caughtUp()
				continue
			}
			if len(pending) == 0 {
				window.Reset(l.cfg.Window)
			}
			pending = append(pending, ev.Update)
			if !ev.Version.IsUnknown() {
				high = ev.Version
			}
			if len(pending) >= l.cfg.MaxBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
}

// commit runs apply until it succeeds, then moves the fold's cursor. While it
// backs off after a failure it keeps reading the watch: updates that arrive
// are folded (under the unchanged cursor) and appended to the batch, so a
// change that repairs whatever made apply fail reaches the next attempt.
func (l *appliedLoop) commit(ctx context.Context, wa Watch, b Batch) error {
	under := l.fold.Cursor()
	caughtUp := false
	for attempt := 0; ; attempt++ {
		err := l.apply(ctx, b)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.failed("apply", err)
		more, synced, err := l.absorb(ctx, wa, attempt, maxRetryGrowth*l.cfg.MaxBatch-len(b.Updates))
		if err != nil {
			return err
		}
		caughtUp = caughtUp || synced
		if len(more) == 0 {
			continue
		}
		if err := l.retry(ctx, "fold", func() error { return l.fold.Apply(ctx, more, under) }); err != nil {
			return err
		}
		b.Updates = append(b.Updates, more...)
		for _, u := range more {
			if !u.Version.IsUnknown() {
				b.Cursor = CursorAt(u.Version)
			}
		}
	}
	if l.progress.Err != nil {
		l.progress.Err, l.progress.Failures = nil, 0
		l.report()
	}
	if b.Cursor != l.fold.Cursor() {
		if err := l.retry(ctx, "checkpoint", func() error { return l.fold.Apply(ctx, nil, b.Cursor) }); err != nil {
			return err
		}
		l.progress.Cursor = b.Cursor
		l.report()
	}
	if caughtUp {
		l.caughtUp()
	}
	return nil
}

// absorb waits out the backoff of a failed attempt, collecting at most room
// updates from the watch meanwhile. synced reports a Synced marker among
// them; a closed watch ends the wait with its error.
func (l *appliedLoop) absorb(ctx context.Context, wa Watch, attempt, room int) (more []Update, synced bool, err error) {
	t := time.NewTimer(l.backoff(attempt))
	defer t.Stop()
	events := wa.Events()
	for {
		if len(more) >= room {
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
		}
	}
}

// retry calls fn until it succeeds or ctx is done, backing off in between.
func (l *appliedLoop) retry(ctx context.Context, step string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			if l.progress.Err != nil {
				l.progress.Err, l.progress.Failures = nil, 0
				l.report()
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.failed(step, err)
		if !l.sleep(ctx, attempt) {
			return ctx.Err()
		}
	}
}

func (l *appliedLoop) failed(step string, err error) {
	l.progress.Err = fmt.Errorf("%s: %w", step, err)
	l.progress.Failures++
	l.cfg.Logger.Warn("watch step failed; retrying", "step", step, "scope", l.cfg.Scope.String(), "cursor", l.fold.Cursor().String(), "failures", l.progress.Failures, "err", err)
	l.report()
}

func (l *appliedLoop) caughtUp() {
	if !l.progress.Synced {
		l.progress.Synced = true
		l.cfg.Logger.Info("caught up", "scope", l.cfg.Scope.String(), "cursor", l.fold.Cursor().String())
		l.report()
	}
}

func (l *appliedLoop) report() {
	if l.cfg.OnProgress != nil {
		l.cfg.OnProgress(l.progress)
	}
}

// backoff is the wait after a failed attempt: full jitter over an
// exponentially growing, capped window.
func (l *appliedLoop) backoff(attempt int) time.Duration {
	d := l.cfg.MaxBackoff
	if attempt < 30 {
		d = min(l.cfg.MinBackoff<<attempt, l.cfg.MaxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits for the attempt's backoff. It returns false when ctx ended first.
func (l *appliedLoop) sleep(ctx context.Context, attempt int) bool {
	t := time.NewTimer(l.backoff(attempt))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// watchEnd turns a closed event stream into the error that ended it.
func watchEnd(wa Watch) error {
	if err := wa.Err(); err != nil {
		return err
	}
	return errWatchEnded
}
