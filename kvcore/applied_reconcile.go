package kvcore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
)

// reconcileKeys deletes from the fold, and hands apply as a batch, the keys
// the bucket no longer has. The fold is at its cursor C (everything folded
// was applied) and the listing is taken after C, so a key of the fold
// missing from it was deleted at or before the listing: a synthetic delete
// agrees with the bucket, and a key re-created later arrives as a put. A
// live key the fold lacks (one the bucket holds at a revision the fold
// passed without it: a server that lost a purge brings a purged record
// back) gets a put of the bucket's entry in the same batch.
//
// A source that lists versions ([KeyVersionLister]) also lists keys with
// empty values, so that one the fold lacks is added too, and lets it check
// that the fold is in step with the bucket (see inStep): a key whose
// revisions or value size disagree means the bucket went back in time
// (ErrOutOfStep), and so does a value that differs from the fold's at the
// same revision among the fold's latest keys (see sameRevision); the
// session then ends with [ErrCursorExpired] and the loop resyncs.
//
// When the bucket's mark shows it unchanged since the fold last matched it,
// there is nothing to list (see [AppliedConfig.OnMark]).
func (l *appliedLoop) reconcileKeys(ctx context.Context, wa Watch) error {
	if wa.Err() != nil {
		// The watch failed (a lost consumer, a server whose store was
		// restored): what it delivered may be a bucket that is no more,
		// which the checks below take on trust up to where the session
		// resumed. The next session reconciles, from its own start. A
		// failure the backend finds only after this reconciliation
		// cannot be undone here: the next reconciliation is the net.
		return nil
	}
	pre := l.readMark(ctx)
	if l.unchanged(pre) {
		l.reconciled()
		return nil
	}
	live, err := l.listLive(ctx)
	if errors.Is(err, ErrUnsupported) {
		l.cfg.Logger.Warn("the source cannot list keys; deletions whose markers expired go unnoticed", "scope", l.cfg.Scope.String())
		l.reconciled()
		return nil
	}
	if err != nil {
		return err
	}
	stale, err := l.compareKeys(ctx, live)
	if err != nil {
		return err
	}
	fixes, err := l.staleDeletes(ctx, stale)
	if err != nil {
		return err
	}
	puts, err := l.missingPuts(ctx, live)
	if err != nil {
		return err
	}
	fixes = append(fixes, puts...)
	if wa.Err() != nil {
		return nil // as above: the watch failed while the keys were listed
	}
	l.reconciled()
	if len(fixes) > 0 {
		// At or before the cursor: marked until committed (see
		// applied_folding.go).
		if err := l.setFolding(ctx, true); err != nil {
			return err
		}
		if err := l.foldUnder(ctx, fixes, l.fold.Cursor()); err != nil {
			return err
		}
		if _, err := l.commit(ctx, wa, Batch{Updates: fixes, Cursor: l.fold.Cursor()}, true); err != nil {
			return err
		}
		if err := l.setFolding(ctx, false); err != nil {
			return err
		}
	}
	if wa.Err() == nil { // a watch that failed since leaves the mark unmatched
		l.recordMark(ctx, pre)
	}
	return nil
}

// reconciled clears the reconciliation owed: what the fold held up to
// where this session resumed was checked.
func (l *appliedLoop) reconciled() {
	l.owed &^= owedReconcile
	l.unreconciledFrom = l.resumedFrom
}

// saveUnreconciled persists unreconciledFrom through OnUnreconciled when it
// changed, retrying a failure with backoff.
func (l *appliedLoop) saveUnreconciled(ctx context.Context) error {
	if l.cfg.OnUnreconciled == nil || l.unreconciledFrom == l.savedUnreconciled {
		return nil
	}
	if err := l.retry(ctx, func() error { return l.cfg.OnUnreconciled(ctx, l.unreconciledFrom) }); err != nil {
		return err
	}
	l.savedUnreconciled = l.unreconciledFrom
	return nil
}

// liveKey is a key of the bucket's listing: the version of its latest
// record (unknown when the source lists keys only) and whether the fold
// holds the key.
type liveKey struct {
	version Version
	size    int // of its value, -1 when unknown
	held    bool
}

// listLive lists the bucket's live keys under the scope, with their
// versions when the source gives them.
func (l *appliedLoop) listLive(ctx context.Context) (map[string]liveKey, error) {
	live := make(map[string]liveKey)
	for _, p := range l.cfg.Scope.List() {
		kvs, err := l.listVersions(ctx, p)
		if errors.Is(err, ErrUnsupported) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("kvcore: reconcile: listing live keys under %q: %w", p, err)
		}
		for _, kv := range kvs {
			live[kv.Key] = liveKey{version: kv.Version, size: kv.Size}
		}
	}
	return live, nil
}

// listVersions lists the live keys under prefix, with their versions when
// the source gives them (else unknown).
func (l *appliedLoop) listVersions(ctx context.Context, prefix string) ([]KeyVersion, error) {
	if lister, ok := l.src.(KeyVersionLister); ok {
		if kvs, err := lister.KeyVersions(ctx, prefix); !errors.Is(err, ErrUnsupported) {
			return kvs, err
		}
	}
	keys, err := l.src.Keys(ctx, prefix)
	kvs := make([]KeyVersion, len(keys))
	for i, k := range keys {
		kvs[i] = KeyVersion{Key: k, Size: -1}
	}
	return kvs, err
}

// compareKeys returns the keys the fold holds under the scope that live
// lacks, sorted and without duplicates, and marks in live the ones the fold
// holds. It fails with ErrOutOfStep when a key's versions show the fold
// out of step with the bucket.
func (l *appliedLoop) compareKeys(ctx context.Context, live map[string]liveKey) ([]string, error) {
	at, _ := l.fold.Cursor().Revision()
	resumed, _ := l.resumedFrom.Revision()
	earliest, _ := l.unreconciledFrom.Revision()
	var behind error // the first key out of step
	skewed := 0
	// The latest keys up to where this session resumed, and up to where
	// the earliest session not reconciled did.
	var same, earlier sameRevision
	stale, err := staleKeys(ctx, l.fold, l.cfg.Scope.List(), func(e Entry) bool {
		lk, ok := live[e.Key]
		if !ok {
			return false
		}
		lk.held = true
		live[e.Key] = lk
		if err := inStep(e, lk, at); err != nil {
			skewed++
			if behind == nil {
				behind = err
			}
		} else if rev, ok := sameSize(e, lk, at); ok {
			if rev <= resumed {
				same.offer(e, rev)
			}
			if rev <= earliest && earliest < resumed {
				earlier.offer(e, rev)
			}
		}
		return true
	})
	if err != nil {
		return nil, l.foldReadFailed(fmt.Errorf("kvcore: listing fold keys: %w", err))
	}
	if behind != nil {
		return nil, fmt.Errorf("%w: %w: %d keys disagree, e.g. %w", ErrCursorExpired, ErrOutOfStep, skewed, behind)
	}
	if err := same.check(ctx, l.src); err != nil {
		return nil, err
	}
	if err := earlier.check(ctx, l.src); err != nil {
		return nil, err
	}
	return stale, nil
}

// sameSize reports the revision at which the fold's entry e and the
// bucket's latest record of its key agree, with values of the same size,
// the fold being at revision at (see sameRevision).
func sameSize(e Entry, bucket liveKey, at uint64) (uint64, bool) {
	f, b, ok := revisionsOf(e, bucket, at)
	if !ok || f != b || bucket.size != len(e.Value) {
		return 0, false
	}
	return f, true
}

// revisionsOf returns the revisions of the fold's entry e and of the
// bucket's latest record of its key, ok when both have one and the fold,
// at revision at, is past the start of the bucket.
func revisionsOf(e Entry, bucket liveKey, at uint64) (f, b uint64, ok bool) {
	f, okf := e.Version.Revision()
	b, okb := bucket.version.Revision()
	return f, b, okf && okb && at != 0
}

// inStep checks the fold's entry e against the bucket's latest record of
// its key, the fold being at revision at: the bucket cannot have an older
// latest record than one the fold applied, nor a newer one at or before at
// that the fold passed without applying, nor at the fold's revision a
// value of another size (a revision reused by another record).
func inStep(e Entry, bucket liveKey, at uint64) error {
	f, b, ok := revisionsOf(e, bucket, at)
	switch {
	case !ok:
		return nil
	case f == b && bucket.size >= 0 && bucket.size != len(e.Value):
		return fmt.Errorf("key %q is at revision %d in the fold and in the bucket, but with a %d-byte value in the bucket and a %d-byte one in the fold", e.Key, f, bucket.size, len(e.Value))
	case f > b:
		return fmt.Errorf("key %q is at revision %d in the fold but %d in the bucket, which lost the newer record", e.Key, f, b)
	case f < b && b <= at:
		return fmt.Errorf("key %q is at revision %d in the fold but %d in the bucket, a record the fold passed (it is at %d) without it", e.Key, f, b, at)
	}
	return nil
}

// missingPuts returns puts of the bucket's current entries for the listed
// keys the fold does not hold (not held in live), in key order. A key
// deleted since the listing is left to the watch, which delivers its delete.
func (l *appliedLoop) missingPuts(ctx context.Context, live map[string]liveKey) ([]Update, error) {
	var missing []string
	for k, lk := range live {
		if !lk.held {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	var puts []Update
	for _, k := range missing {
		e, err := l.src.Entry(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnsupported):
			continue
		case err != nil:
			return nil, fmt.Errorf("kvcore: reading %q, which the fold lacks: %w", k, err)
		}
		puts = append(puts, Update{Op: OpPut, Key: k, Value: e.Value, Version: e.Version})
	}
	// A key written after the fold's cursor is only early: the watch
	// delivers it too. One at or before the cursor was passed without it.
	at, _ := l.fold.Cursor().Revision()
	passed := 0
	for _, p := range puts {
		if rev, ok := p.Version.Revision(); !ok || rev <= at {
			passed++
		}
	}
	if passed > 0 {
		l.cfg.Logger.Warn("adding keys the bucket holds at revisions the fold passed without them", "scope", l.cfg.Scope.String(), "keys", passed)
	}
	return puts, nil
}

// reconcileLogCap is how many keys a reconciliation's log line names.
const reconcileLogCap = 10

// staleDeletes returns synthetic deletes (unknown version) for the stale
// keys, those the fold holds under the scope that the listing lacks, that
// the source confirms are gone: a listing taken while the bucket changes
// may miss a live key, and deleting it would be worse than keeping a stale
// one until the next reconciliation. A plain listing (Keys) also leaves
// out keys whose value is empty, which are live keys too. A key that exists with another
// value than the fold's gets a put of the bucket's current entry instead.
func (l *appliedLoop) staleDeletes(ctx context.Context, stale []string) ([]Update, error) {
	var deletes []Update
	var replaced []string
	for _, k := range stale {
		e, err := l.src.Entry(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnsupported):
			deletes = append(deletes, Update{Op: OpDelete, Key: k})
		case err != nil:
			return nil, fmt.Errorf("kvcore: confirming that %q is gone: %w", k, err)
		default:
			// The key exists (the listing missed it, or leaves out empty
			// values). The fold's entry may be stale (a value of a replaced
			// bucket, or one overwritten since the listing): the bucket's
			// current one replaces it, ahead of the cursor; the watch
			// delivers it again later, which is harmless.
			if cur, err := l.fold.Get(k); err == nil && cur.Version == e.Version && bytes.Equal(cur.Value, e.Value) {
				continue
			}
			replaced = append(replaced, k)
			deletes = append(deletes, Update{Op: OpPut, Key: k, Value: e.Value, Version: e.Version})
		}
	}
	if n := len(replaced); n > 0 {
		// One line, however many: under concurrent writes a listing misses
		// keys written while it ran.
		l.cfg.Logger.Info("keys missing from the bucket's listing exist with other values; taking the bucket's", "scope", l.cfg.Scope.String(), "keys", n, "first", replaced[:min(n, reconcileLogCap)])
	}
	if n := len(deletes) - len(replaced); n > 0 {
		l.cfg.Logger.Info("removing keys that vanished from the bucket", "scope", l.cfg.Scope.String(), "keys", n)
	}
	return deletes, nil
}
