package kvcore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"
)

// Batch is one unit of work [WatchApplied] hands to its [ApplyFunc].
type Batch struct {
	// Updates are the batch's changes in version order. The fold already
	// holds them when apply runs: reading it gives the state after this
	// batch (or a later one, when an earlier run folded further before it
	// stopped).
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
//
// Once started, an attempt is not interrupted by the loop's shutdown: its
// context is detached from the loop's cancellation, so apply must bound its
// own work (plugin and hook timeouts). The loop checkpoints the batch, then
// stops.
type ApplyFunc func(ctx context.Context, b Batch) error

// Source is what [WatchApplied] reads a bucket through: its change stream,
// and its live keys, which the loop compares with the fold's to catch
// deletions whose markers the bucket dropped before the loop saw them.
// A [Store] is a Source.
type Source interface {
	Watcher
	// Keys lists the live keys under prefix; see [Reader]. It may leave
	// out keys whose value is empty.
	Keys(ctx context.Context, prefix string) ([]string, error)
	// Entry reads one key, empty values included; see [Reader]. The loop
	// asks it to confirm that a key missing from a listing is really gone
	// before deleting it.
	Entry(ctx context.Context, key string) (Entry, error)
}

// Progress is a snapshot of a [WatchApplied] loop's state, passed to
// [AppliedConfig.OnProgress].
type Progress struct {
	// Cursor is the fold's committed cursor.
	Cursor Cursor
	// Synced is true once the loop has caught up with the bucket and applied
	// everything it saw doing so. It turns false again while a resync
	// rebuilds the fold after [ErrCursorExpired].
	Synced bool
	// Err is the failure being retried; nil after the step succeeds.
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
	// Reconcile is how often, besides right after catching up from a
	// cursor, the loop lists the bucket's live keys and deletes from the
	// fold the ones the bucket no longer has. That catches a deletion whose
	// marker the bucket dropped before the loop saw it (NATS purges old
	// delete markers, by default after 30 minutes), which no change stream
	// can deliver. 0 reconciles only after catching up.
	Reconcile time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential backoff
	// between retries of a failed step (defaults 100ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// BucketID is the identity of the bucket incarnation the fold's cursor
	// was taken from, as [BucketIdentifier] reported it and OnBucketID
	// persisted it; "" when unknown.
	BucketID string
	// OnBucketID, if set and the source implements [BucketIdentifier],
	// arms the bucket identity check: at every session start, once the
	// watch is attached, the loop reads the bucket's identity, and if it
	// differs from the one the fold's cursor was taken from (or that one is
	// unknown while the fold has a cursor) it treats the cursor as expired:
	// it resyncs from the bucket's current state, as after
	// [ErrCursorExpired]. A bucket deleted and created again starts its
	// revisions over, so resuming from its old cursor would skip changes.
	//
	// OnBucketID persists a new identity. It is called only after a
	// checkpoint taken under that identity is committed, so a crash in
	// between causes a redundant resync at worst, never a skip. A failure
	// is retried with backoff.
	OnBucketID func(ctx context.Context, id string) error
	// OnProgress, if set, is called from the loop's goroutine when it
	// starts, after every checkpoint, when it catches up and after every
	// failure. It must not block.
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

const (
	// syncChunk is how many updates of an initial sync are folded per Apply.
	syncChunk = 4096
	// maxRetryGrowth (in multiples of MaxBatch) and maxRetryBytes bound
	// what a failing batch absorbs while it is retried; past them the watch
	// is left to back-pressure.
	maxRetryGrowth = 16
	maxRetryBytes  = 8 << 20
	// expiriesBeforeBackoff is how many resyncs in a row may start at once
	// after ErrCursorExpired before the loop backs off between them; a
	// session that lasted stableSession breaks the row.
	expiriesBeforeBackoff = 2
	stableSession         = time.Minute
)

// errWatchEnded reports a watch whose event stream closed without an error
// while the loop still wanted it.
var errWatchEnded = errors.New("kvcore: watch ended unexpectedly")

// WatchApplied keeps fold in sync with the keys of cfg.Scope in src and hands
// every change to apply, advancing the fold's cursor only after apply
// returned nil. It runs until ctx is done and then returns nil; it returns
// early only for a configuration error (an empty scope, an invalid prefix).
//
// A fold with a cursor resumes with a delta watch from that cursor and, once
// caught up, reconciles its keys with the bucket's (see
// [AppliedConfig.Reconcile]). A fold without a cursor, or whose cursor the
// bucket no longer retains ([ErrCursorExpired]), is synced from the bucket's
// current state: the whole state is folded first, keys that vanished are
// deleted, and only then is apply called, once, with a full batch — a plugin
// never sees a half-finished sync as if it were the whole bucket.
//
// Each batch goes through three durable steps: the updates are folded under
// the previous cursor (the fold may hold data ahead of its cursor), apply
// runs, and the new cursor is committed. A crash between any two steps loses
// nothing: the restarted loop resumes from the fold's cursor and delivers the
// batch again. A failed step is retried after a jittered exponential backoff;
// a failed watch is reopened from the fold's cursor (never from an in-memory
// position). Shutdown lets an apply in flight finish and be checkpointed; a
// batch not yet handed to apply is abandoned, to be delivered again.
//
// WatchApplied owns fold while it runs: nothing else may call its Apply.
func WatchApplied(ctx context.Context, src Source, fold Fold, cfg AppliedConfig, apply ApplyFunc) error {
	if err := cfg.Scope.Validate(); err != nil {
		return fmt.Errorf("kvcore: watch applied: %w", err)
	}
	l := &appliedLoop{src: src, fold: fold, cfg: cfg.withDefaults(), apply: apply, knownID: cfg.BucketID}
	if id, ok := src.(BucketIdentifier); ok && cfg.OnBucketID != nil {
		l.ident = id
	}
	l.fullPending = cfg.FullRender
	l.progress.Cursor = fold.Cursor()
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
		if isConfigError(err) {
			return fmt.Errorf("kvcore: watch applied: %w", err)
		}
		if errors.Is(err, ErrCursorExpired) {
			// Retention passed the cursor: start over from the bucket's
			// current state; the sync deletes what vanished meanwhile.
			l.cfg.Logger.Warn("cursor expired; resyncing from the current state", "scope", l.cfg.Scope.String(), "cursor", l.fold.Cursor().String(), "err", err)
			l.resync = true
			if l.expiries++; l.expiries < expiriesBeforeBackoff {
				continue
			}
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

// isConfigError reports errors that no retry can cure.
func isConfigError(err error) bool {
	return errors.Is(err, ErrEmptyScope) || errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrInvalidBucket)
}

type appliedLoop struct {
	src   Source
	fold  Fold
	cfg   AppliedConfig
	apply ApplyFunc

	// ident is the source's identity, nil when the check is not armed.
	// knownID is the identity the fold's cursor was taken from, sessionID
	// the one the current session attached to.
	ident              BucketIdentifier
	knownID, sessionID string

	progress    Progress
	fullPending bool // a full batch is owed once the loop catches up
	resync      bool // the next session must sync from the current state
	expiries    int  // consecutive sessions that ended with ErrCursorExpired
	reconcile   bool // the session owes a reconciliation once caught up
}

// session runs one watch until it ends and returns why it ended.
func (l *appliedLoop) session(ctx context.Context) error {
	from := l.fold.Cursor()
	if l.resync {
		from = Cursor{}
	}
	wa, err := l.src.Watch(ctx, l.cfg.Scope, from)
	if err != nil {
		return err
	}
	defer wa.Stop()
	if err := l.checkBucket(ctx, from); err != nil {
		return err
	}
	if from.IsNone() {
		if err := l.sync(ctx, wa); err != nil {
			return err
		}
		l.resync = false
	} else {
		l.reconcile = true
	}
	return l.follow(ctx, wa)
}

// sync folds a state-sync watch's initial state, deletes the keys it lacks,
// and applies one full batch.
func (l *appliedLoop) sync(ctx context.Context, wa Watch) error {
	if l.progress.Synced {
		l.progress.Synced = false
		l.report()
	}
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
			if chunk = append(chunk, ev.Update); len(chunk) >= syncChunk {
				if err := l.foldUnder(ctx, chunk, under); err != nil {
					return err
				}
				chunk = nil
			}
		}
	}
	if err := l.foldUnder(ctx, chunk, under); err != nil {
		return err
	}
	if held {
		deletes, err := l.staleDeletes(ctx, seen)
		if err != nil {
			return err
		}
		if err := l.foldUnder(ctx, deletes, under); err != nil {
			return err
		}
		removed = append(removed, deletes...)
	}
	// The fold now holds the bucket's current state, of which a cursor
	// from before (expired, or of another incarnation) says nothing.
	var next Cursor
	if !high.IsUnknown() {
		next = CursorAt(high)
	}
	l.fullPending = false
	if _, err := l.commit(ctx, wa, Batch{Updates: removed, Full: true, Cursor: next}); err != nil {
		return err
	}
	if err := l.adoptBucket(ctx); err != nil {
		return err
	}
	l.caughtUp()
	return nil
}

// errBucketReplaced reports a bucket whose identity is not the one the
// fold's cursor was taken from. It is handled as [ErrCursorExpired].
var errBucketReplaced = errors.New("kvcore: the bucket is not the one the fold's cursor was taken from")

// checkBucket reads the bucket's identity once the session's watch is
// attached (so a re-creation before the attach is seen) and, when the
// session resumes from a cursor taken on another incarnation, or on an
// unrecorded one, fails it as expired.
func (l *appliedLoop) checkBucket(ctx context.Context, from Cursor) error {
	if l.ident == nil {
		return nil
	}
	id, err := l.ident.BucketID(ctx)
	if err != nil {
		return fmt.Errorf("kvcore: reading the bucket's identity: %w", err)
	}
	l.sessionID = id
	if from.IsNone() || id == l.knownID {
		return nil
	}
	known := strconv.Quote(l.knownID)
	if l.knownID == "" {
		known = "an unrecorded one"
	}
	return fmt.Errorf("%w: %w: the bucket is %q, the cursor %v was taken from %s", ErrCursorExpired, errBucketReplaced, id, from, known)
}

// adoptBucket persists the identity of the session's bucket once the fold
// holds a checkpoint taken on it.
func (l *appliedLoop) adoptBucket(ctx context.Context) error {
	if l.ident == nil || l.sessionID == l.knownID {
		return nil
	}
	id := l.sessionID
	err := l.retry(ctx, func() error {
		if err := l.cfg.OnBucketID(ctx, id); err != nil {
			return fmt.Errorf("persisting the bucket identity %q: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.cfg.Logger.Info("recorded the bucket's identity", "scope", l.cfg.Scope.String(), "bucket_id", id, "previous", l.knownID)
	l.knownID = id
	return nil
}

// staleDeletes returns synthetic deletes (unknown version) for the keys the
// fold holds under the scope that are not in live and that the source
// confirms are gone: a listing taken while the bucket changes may miss a
// live key, and deleting it would be worse than keeping a stale one until
// the next reconciliation. A listing also leaves out keys whose value is
// empty, which are live keys too.
func (l *appliedLoop) staleDeletes(ctx context.Context, live map[string]struct{}) ([]Update, error) {
	stale, err := StaleKeys(ctx, l.fold, l.cfg.Scope.List(), live)
	if err != nil {
		return nil, fmt.Errorf("kvcore: listing fold keys: %w", err)
	}
	var deletes []Update
	for _, k := range stale {
		e, err := l.src.Entry(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnsupported):
			deletes = append(deletes, Update{Op: OpDelete, Key: k})
		case err != nil:
			return nil, fmt.Errorf("kvcore: confirming that %q is gone: %w", k, err)
		case len(e.Value) > 0:
			l.cfg.Logger.Warn("a key missing from the bucket's listing still exists; keeping it", "key", k)
		}
	}
	if len(deletes) > 0 {
		l.cfg.Logger.Info("removing keys that vanished from the bucket", "scope", l.cfg.Scope.String(), "keys", len(deletes))
	}
	return deletes, nil
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
	var tick <-chan time.Time
	if l.cfg.Reconcile > 0 {
		t := time.NewTicker(l.cfg.Reconcile)
		defer t.Stop()
		tick = t.C
	}
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
		if err := l.foldUnder(ctx, b.Updates, under); err != nil {
			return err
		}
		synced, err := l.commit(ctx, wa, b)
		if err == nil && synced {
			err = l.onSynced(ctx, wa)
		}
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-window.C:
			if err := flush(); err != nil {
				return err
			}
		case <-tick:
			l.reconcile = true
			if err := flush(); err != nil {
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
				if err := flush(); err != nil {
					return err
				}
				if err := l.onSynced(ctx, wa); err != nil {
					return err
				}
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

// onSynced runs what is owed once the loop has applied everything up to a
// point where it was caught up: the reconciliation of a resumed session, the
// full render FullRender asks for, and the caught-up report.
func (l *appliedLoop) onSynced(ctx context.Context, wa Watch) error {
	if l.reconcile {
		if err := l.reconcileKeys(ctx, wa); err != nil {
			return err
		}
	}
	if l.fullPending {
		l.fullPending = false
		if _, err := l.commit(ctx, wa, Batch{Full: true, Cursor: l.fold.Cursor()}); err != nil {
			l.fullPending = true
			return err
		}
	}
	l.caughtUp()
	return nil
}

// reconcileKeys deletes from the fold, and hands apply as a batch, the keys
// the bucket no longer has. The fold is at its cursor C (everything folded
// was applied) and the listing is taken after C, so a key of the fold
// missing from it was deleted at or before the listing: a synthetic delete
// agrees with the bucket, and a key re-created later arrives as a put.
func (l *appliedLoop) reconcileKeys(ctx context.Context, wa Watch) error {
	live := make(map[string]struct{})
	for _, p := range l.cfg.Scope.List() {
		keys, err := l.src.Keys(ctx, p)
		if errors.Is(err, ErrUnsupported) {
			l.cfg.Logger.Warn("the source cannot list keys; deletions whose markers expired go unnoticed", "scope", l.cfg.Scope.String())
			l.reconcile = false
			return nil
		}
		if err != nil {
			return fmt.Errorf("kvcore: reconcile: listing live keys under %q: %w", p, err)
		}
		for _, k := range keys {
			live[k] = struct{}{}
		}
	}
	deletes, err := l.staleDeletes(ctx, live)
	if err != nil {
		return err
	}
	l.reconcile = false
	if len(deletes) == 0 {
		return nil
	}
	if err := l.foldUnder(ctx, deletes, l.fold.Cursor()); err != nil {
		return err
	}
	_, err = l.commit(ctx, wa, Batch{Updates: deletes, Cursor: l.fold.Cursor()})
	return err
}

// foldUnder folds updates into the fold without moving its cursor, retrying
// until it succeeds or ctx ends.
func (l *appliedLoop) foldUnder(ctx context.Context, updates []Update, under Cursor) error {
	if len(updates) == 0 {
		return nil
	}
	return l.retry(ctx, func() error {
		if err := l.fold.Apply(ctx, updates, under); err != nil {
			return fmt.Errorf("fold: %w", err)
		}
		return nil
	})
}

// commit runs apply until it succeeds, then moves the fold's cursor. While it
// backs off after a failure it keeps reading the watch: updates that arrive
// are folded (under the unchanged cursor) and appended to the batch, so a
// change that repairs whatever made apply fail reaches the next attempt. It
// reports whether a Synced event arrived meanwhile.
func (l *appliedLoop) commit(ctx context.Context, wa Watch, b Batch) (synced bool, err error) {
	under := l.fold.Cursor()
	absorbed, absorbedBytes := 0, 0
	// An attempt that started runs to its end even if ctx is cancelled.
	run := context.WithoutCancel(ctx)
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return synced, err
		}
		err := l.apply(run, b)
		if err == nil {
			break
		}
		l.failed(fmt.Errorf("apply: %w", err))
		more, sawSynced, err := l.absorb(ctx, wa, attempt, maxRetryGrowth*l.cfg.MaxBatch-absorbed, maxRetryBytes-absorbedBytes)
		if err != nil {
			return synced, err
		}
		synced = synced || sawSynced
		if len(more) == 0 {
			continue
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
	}
	l.recovered()
	if b.Cursor != l.fold.Cursor() {
		// The checkpoint of an applied batch is written even during
		// shutdown; only its retries stop with ctx.
		err := l.retry(ctx, func() error {
			if err := l.fold.Apply(run, nil, b.Cursor); err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			return nil
		})
		if err != nil {
			return synced, err
		}
		l.progress.Cursor = b.Cursor
		l.report()
	}
	return synced, nil
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

// retry calls fn until it succeeds or ctx is done, backing off in between.
// It clears the reported failure only if it reported one itself, so a step
// that keeps working does not hide another one that keeps failing.
func (l *appliedLoop) retry(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 0 {
				l.recovered()
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.failed(err)
		if !l.sleep(ctx, attempt) {
			return ctx.Err()
		}
	}
}

func (l *appliedLoop) failed(err error) {
	l.progress.Err = err
	l.progress.Failures++
	l.cfg.Logger.Warn("watch step failed; retrying", "scope", l.cfg.Scope.String(), "cursor", l.fold.Cursor().String(), "failures", l.progress.Failures, "err", err)
	l.report()
}

func (l *appliedLoop) recovered() {
	if l.progress.Err != nil {
		l.progress.Err, l.progress.Failures = nil, 0
		l.report()
	}
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
