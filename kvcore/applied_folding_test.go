package kvcore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/memkv"
)

// foldingLog records a loop's OnFolding calls and its full batches, and
// fails its applies while failing is set.
type foldingLog struct {
	mu      sync.Mutex
	marks   []bool
	fulls   int
	applies int
	failing bool
}

func (l *foldingLog) apply(_ context.Context, b kvcore.Batch) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applies++
	if b.Full {
		l.fulls++
	}
	if l.failing {
		return errors.New("the plugin fails")
	}
	return nil
}

func (l *foldingLog) setFailing(failing bool) {
	l.mu.Lock()
	l.failing = failing
	l.mu.Unlock()
}

func (l *foldingLog) attempts() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applies
}

func (l *foldingLog) onFolding(_ context.Context, folding bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.marks = append(l.marks, folding)
	return nil
}

func (l *foldingLog) seen() ([]bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.marks), l.fulls
}

// A sync over a fold that had a cursor folds the bucket's state at or
// before records no watch delivers again: it is marked folding (durably,
// through OnFolding) before the first record is folded, and until its
// commit; an apply that keeps failing leaves the mark set.
func TestSyncIsMarkedFoldingUntilItsCommit(t *testing.T) {
	s, err := memkv.New().Store(t.Context(), kvcore.StoreConfig{Bucket: "app"})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1", "2", "3"} { // a@1 and a@2 superseded
		if _, err := s.Put(t.Context(), "a", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	fold := newMemFold()
	// The fold is at revision 1, which the bucket no longer retains: the
	// loop syncs.
	if err := fold.Apply(t.Context(), []kvcore.Update{{Op: kvcore.OpPut, Key: "a", Value: []byte("1"), Version: kvcore.RevisionVersion(1)}}, kvcore.RevisionCursor(1)); err != nil {
		t.Fatal(err)
	}
	log := &foldingLog{failing: true}
	loop(t, s, fold, kvcore.AppliedConfig{OnFolding: log.onFolding}, log.apply)
	waitFor(t, "the sync's apply to fail twice", func() bool { _, fulls := log.seen(); return fulls > 1 })
	if marks, _ := log.seen(); !slices.Equal(marks, []bool{true}) {
		t.Fatalf("OnFolding calls while the sync's commit fails = %v, want [true]", marks)
	}
	log.setFailing(false)
	waitFor(t, "the mark to clear after the commit", func() bool { marks, _ := log.seen(); return slices.Equal(marks, []bool{true, false}) })
	if got := fold.Cursor(); got != kvcore.RevisionCursor(3) {
		t.Errorf("cursor after the sync = %v, want rev 3", got)
	}
}

// storeAndFoldAtA returns a store holding a=1 and a fold that applied it,
// at its revision.
func storeAndFoldAtA(t *testing.T) (kvcore.Store, *memFold) {
	t.Helper()
	s, err := memkv.New().Store(t.Context(), kvcore.StoreConfig{Bucket: "app"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Put(t.Context(), "a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	fold := newMemFold()
	if err := fold.Apply(t.Context(), []kvcore.Update{{Op: kvcore.OpPut, Key: "a", Value: []byte("1"), Version: v}}, kvcore.CursorAt(v)); err != nil {
		t.Fatal(err)
	}
	return s, fold
}

// A loop started with the folding mark (a sync or a reconciliation's fixes
// were folded, not committed, when it last stopped) syncs first, even when
// its cursor would resume: a bucket that went back in time reuses the
// revisions up to it, and no watch delivers the folded records again.
func TestLoopStartedFoldingSyncsFirst(t *testing.T) {
	s, fold := storeAndFoldAtA(t)
	log := &foldingLog{}
	loop(t, s, fold, kvcore.AppliedConfig{Folding: true, OnFolding: log.onFolding}, log.apply)
	waitFor(t, "a full sync and the mark cleared", func() bool {
		marks, fulls := log.seen()
		return fulls == 1 && slices.Equal(marks, []bool{false})
	})
}

// A reconciliation's fixes (here a put of a key the bucket holds at a
// revision the fold passed without it) sit at or before the cursor: they
// are marked folding until their commit.
func TestReconciliationFixesAreMarkedFoldingUntilTheirCommit(t *testing.T) {
	s, err := memkv.New().Store(t.Context(), kvcore.StoreConfig{Bucket: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	v, err := s.Put(t.Context(), "b", []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	fold := newMemFold() // at b's revision, without a
	if err := fold.Apply(t.Context(), []kvcore.Update{{Op: kvcore.OpPut, Key: "b", Value: []byte("2"), Version: v}}, kvcore.CursorAt(v)); err != nil {
		t.Fatal(err)
	}
	log := &foldingLog{failing: true}
	loop(t, s, fold, kvcore.AppliedConfig{OnFolding: log.onFolding}, log.apply)
	waitFor(t, "the fixes' apply to fail twice", func() bool { return log.attempts() > 1 })
	if marks, _ := log.seen(); !slices.Equal(marks, []bool{true}) {
		t.Fatalf("OnFolding calls while the fixes' commit fails = %v, want [true]", marks)
	}
	log.setFailing(false)
	waitFor(t, "the mark to clear after the commit", func() bool { marks, _ := log.seen(); return slices.Equal(marks, []bool{true, false}) })
	if e, err := fold.Get("a"); err != nil || string(e.Value) != "1" {
		t.Errorf("fold's a = %q, %v; want 1", e.Value, err)
	}
}

// A reconciliation's fixes (here the delete of a key whose marker vanished)
// are folded, their apply fails, and the watch ends before a retry: the
// next session of the same loop syncs, as a loop started with the mark
// would. Resuming instead, its reconciliation found the fold matching the
// bucket and the delete was never applied.
func TestSessionAfterUncommittedFixesSyncs(t *testing.T) {
	f := newMemFold()
	for _, k := range []string{"a", "b"} {
		f.entries[k] = kvcore.Entry{Key: k, Value: []byte("v"), Version: kvcore.RevisionVersion(1)}
	}
	f.cursor = kvcore.RevisionCursor(5)
	failed := make(chan struct{}) // the watch ends once the fixes' apply failed
	r := &recorder{fold: f, fail: func(call int, _ kvcore.Batch) error {
		if call == 1 {
			close(failed)
			return errors.New("the plugin failed")
		}
		return nil
	}}
	w := &scriptWatcher{
		sessions: []session{
			{events: []kvcore.Event{synced}, ended: true, endErr: fmt.Errorf("server restarted: %w", kvcore.ErrWatchFailed), endAfter: failed},
			{events: []kvcore.Event{put("a", "v", 1), synced}},
		},
		keys: []string{"a"},
	}
	var folding atomic.Bool
	stop := loop(t, w, f, kvcore.AppliedConfig{
		OnFolding: func(_ context.Context, on bool) error { folding.Store(on); return nil },
	}, r.apply)
	waitFor(t, "an applied batch", func() bool { return len(r.applied()) > 0 })
	waitFor(t, "the mark to clear", func() bool { return !folding.Load() })
	stop()
	b := r.applied()[0]
	if !b.Full {
		t.Errorf("first applied batch = %+v, want the sync's full batch", b)
	}
	if froms := w.resumedFrom(); len(froms) < 2 || !froms[1].IsNone() {
		t.Errorf("sessions started from %v, want the second one to sync (from none)", froms)
	}
	if got, want := f.values(), []string{"a=v"}; !slices.Equal(got, want) {
		t.Errorf("fold = %v, want %v", got, want)
	}
}

// Removals folded past the cursor are marked folding (durably) before the
// fold, and the commit that moves the cursor past them clears the mark, so
// that a loop restarted meanwhile syncs: a resume would not do if the
// bucket lost their records (its server's store restored from an older
// copy), for a delete leaves the key out of the fold and its output in
// place, with nothing left to tell (simulator seed 203687: the delete
// waited in a batch that kept failing). Puts alone are not marked: a lost
// put shows in the next listing.
func TestRemovalsFoldedAheadAreMarkedFoldingUntilTheirCommit(t *testing.T) {
	s, fold := storeAndFoldAtA(t)
	log := &foldingLog{failing: true}
	loop(t, s, fold, kvcore.AppliedConfig{OnFolding: log.onFolding}, log.apply)
	if _, err := s.Put(t.Context(), "b", []byte("2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the put's apply to fail twice", func() bool { return log.attempts() > 1 })
	if marks, _ := log.seen(); len(marks) != 0 {
		t.Fatalf("OnFolding calls for a batch of puts = %v, want none", marks)
	}
	if err := s.Delete(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mark for the delete taken into the failing batch", func() bool { marks, _ := log.seen(); return len(marks) > 0 })
	if marks, fulls := log.seen(); !slices.Equal(marks, []bool{true}) || fulls != 0 {
		t.Fatalf("OnFolding calls while the batch fails = %v (full batches %d), want [true] and none", marks, fulls)
	}
	log.setFailing(false)
	waitFor(t, "the mark to clear after the commit", func() bool { marks, _ := log.seen(); return slices.Equal(marks, []bool{true, false}) })
	if got := fold.Cursor(); got != kvcore.RevisionCursor(3) {
		t.Errorf("cursor after the batch = %v, want rev 3", got)
	}
	if err := s.Delete(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a batch's delete marked and cleared", func() bool {
		marks, _ := log.seen()
		return slices.Equal(marks, []bool{true, false, true, false}) && fold.Cursor() == kvcore.RevisionCursor(4)
	})
}
