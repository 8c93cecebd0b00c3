package kvcore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// Rejected updates advance the cursor; a batch of only rejected updates
// is not handed to apply (upstream catalogue 70).
func TestFilterRejectingAllAdvancesCursorWithoutApply(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(4)
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{put("a", "x", 5), put("b", "y", 6), synced, put("c", "z", 7)}}}}
	stop := loop(t, w, f, kvcore.AppliedConfig{Filter: func(kvcore.Update) bool { return false }}, r.apply)
	waitFor(t, "cursor 7", func() bool { return f.Cursor() == kvcore.RevisionCursor(7) })
	stop()
	if r.calls != 0 {
		t.Errorf("apply called %d times with batches %+v, want never", r.calls, r.applied())
	}
	if want := []string{"a=x", "b=y", "c=z"}; !slices.Equal(f.values(), want) {
		t.Errorf("fold = %v, want the rejected updates folded too: %v", f.values(), want)
	}
}

// A mixed batch hands apply only the accepted updates and the cursor moves
// over the rejected ones (upstream catalogue 83 and 167).
func TestFilterKeepsOnlyAcceptedUpdates(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(4)
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{put("keep.a", "1", 5), put("skip.b", "2", 6), put("keep.c", "3", 7), synced}}}}
	keep := func(u kvcore.Update) bool { return strings.HasPrefix(u.Key, "keep.") }
	stop := loop(t, w, f, kvcore.AppliedConfig{Filter: keep, Window: time.Hour}, r.apply)
	waitFor(t, "cursor 7", func() bool { return f.Cursor() == kvcore.RevisionCursor(7) })
	stop()
	if got := r.appliedRevisions(); !slices.Equal(got, []uint64{5, 7}) {
		t.Errorf("apply saw revisions %v, want [5 7]", got)
	}
	if b := r.applied(); len(b) != 1 || b[0].Cursor != kvcore.RevisionCursor(7) {
		t.Errorf("batches %+v, want one at rev 7", b)
	}
	if _, err := f.Get("skip.b"); err != nil {
		t.Errorf("the rejected skip.b is not in the fold: %v", err)
	}
}

// An export request flushes the open batch first, so the export holds it
// and its cursor (upstream catalogue 85); a failed export is replied and
// the loop goes on.
func TestExportFlushesPendingBatchFirst(t *testing.T) {
	f := openLog(t, filepath.Join(t.TempDir(), "fold.snap"))
	live := make(chan kvcore.Event)
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced}, live: live}}}
	exports := make(chan kvcore.ExportRequest)
	r := &recorder{fold: newMemFold()}
	stop := loop(t, w, f, kvcore.AppliedConfig{Window: time.Hour, Exports: exports}, r.apply)
	// Once the watch has taken the fence from live, the loop has received
	// everything before it; the fence itself may still be on its way.
	live <- put("a", "1", 1)
	live <- put("b", "2", 2)
	live <- put("fence", "", 3)

	dir := filepath.Join(t.TempDir(), "export")
	reply := make(chan kvcore.ExportResult, 1)
	exports <- kvcore.ExportRequest{Dir: dir, Reply: reply}
	res := <-reply
	rev, _ := res.Cursor.Revision()
	if res.Err != nil || rev < 2 {
		t.Fatalf("export = %+v, want a cursor at rev 2 or later", res)
	}
	if b := r.applied(); len(b) != 2 || !b[0].Full || len(b[1].Updates) < 2 {
		t.Errorf("before the export, apply saw %+v, want the initial full batch, then the pending [a b …]", b)
	}
	imported, err := snapshot.Import(dir, filepath.Join(t.TempDir(), "imported.snap"), snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer imported.Close()
	if got := foldState(t, imported, ""); imported.Cursor() != res.Cursor || !slices.Equal(got[:2], []string{"a=1", "b=2"}) {
		t.Errorf("imported export: cursor %v, state %v; want %v, [a=1 b=2 …]", imported.Cursor(), got, res.Cursor)
	}

	// The same directory again is not empty: the export fails, the loop goes on.
	exports <- kvcore.ExportRequest{Dir: dir, Reply: reply}
	if res := <-reply; res.Err == nil {
		t.Errorf("export into a non-empty directory succeeded: %+v", res)
	}
	live <- put("c", "3", 4)
	live <- put("fence", "", 5)
	exports <- kvcore.ExportRequest{Dir: filepath.Join(t.TempDir(), "export2"), Reply: reply}
	res = <-reply
	if rev, _ := res.Cursor.Revision(); res.Err != nil || rev < 4 {
		t.Errorf("export after a failed one = %+v, want a cursor at rev 4 or later", res)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// unreadableFold is a fold whose reads fail.
type unreadableFold struct{ *memFold }

func (unreadableFold) Range(context.Context, string, string, func(kvcore.Entry) error) error {
	return errInjected
}

// With MaxFoldFailures, a fold whose reads keep failing ends WatchApplied
// with ErrFoldFailed, as one whose Apply does.
func TestMaxFoldFailuresCountsReads(t *testing.T) {
	f := unreadableFold{newMemFold()}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{put("a", "1", 1), synced}}}}
	cfg := kvcore.AppliedConfig{Scope: kvcore.AllKeys(), MaxFoldFailures: 3, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	err := kvcore.WatchApplied(t.Context(), w, f, cfg, func(context.Context, kvcore.Batch) error { return nil })
	if !errors.Is(err, kvcore.ErrFoldFailed) || !errors.Is(err, errInjected) {
		t.Fatalf("WatchApplied = %v, want ErrFoldFailed wrapping the fold's read error", err)
	}
}

// With MaxFoldFailures, a fold that keeps failing ends WatchApplied with
// ErrFoldFailed; a fold that recovers in time does not.
func TestMaxFoldFailures(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	f.fail = func(call int, _ []kvcore.Update, _ kvcore.Cursor) error { return errInjected }
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced, put("a", "1", 2)}}}}
	cfg := kvcore.AppliedConfig{Scope: kvcore.AllKeys(), MaxFoldFailures: 3, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	err := kvcore.WatchApplied(t.Context(), w, f, cfg, func(context.Context, kvcore.Batch) error { return nil })
	if !errors.Is(err, kvcore.ErrFoldFailed) || !errors.Is(err, errInjected) {
		t.Fatalf("WatchApplied = %v, want ErrFoldFailed wrapping the fold's error", err)
	}
	if f.calls != 3 {
		t.Errorf("fold.Apply called %d times, want 3", f.calls)
	}

	// Two failures, then success: under the limit of 3, the loop goes on.
	f = newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	f.fail = func(call int, _ []kvcore.Update, _ kvcore.Cursor) error {
		if call <= 2 {
			return errInjected
		}
		return nil
	}
	w = &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced, put("a", "1", 2)}}}}
	stop := loop(t, w, f, kvcore.AppliedConfig{MaxFoldFailures: 3}, (&recorder{fold: f}).apply)
	waitFor(t, "cursor 2", func() bool { return f.Cursor() == kvcore.RevisionCursor(2) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// A failure that ends is logged as over, once, with how many attempts it
// took: each failure was logged, and an operator reading the log must not
// take the last of them for the watch's state.
func TestRecoveryIsLogged(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	var logged logtest.Buffer
	rec := &recorder{fold: f, fail: func(call int, _ kvcore.Batch) error {
		if call <= 6 {
			return errInjected
		}
		return nil
	}}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced, put("a", "1", 2)}}}}
	stop := loop(t, w, f, kvcore.AppliedConfig{Logger: slog.New(slog.NewTextHandler(&logged, nil))}, rec.apply)
	waitFor(t, "cursor 2", func() bool { return f.Cursor() == kvcore.RevisionCursor(2) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	out := logged.String()
	if strings.Count(out, "msg=recovered") != 1 || !strings.Contains(out, "failures=6\n") {
		t.Errorf("log, want one recovery after 6 failures:\n%s", out)
	}
	// The first four are warnings; a step that keeps failing is an error.
	if w, e := strings.Count(out, `level=WARN msg="watch step failed; retrying"`), strings.Count(out, `level=ERROR msg="watch step keeps failing; retrying"`); w != 4 || e != 2 {
		t.Errorf("%d warnings and %d errors, want 4 and 2:\n%s", w, e, out)
	}
}

// A fold whose reads keep failing ends WatchApplied even when each session
// applies a batch before the read that fails (a resume's backlog, then its
// reconciliation's listing of the fold): reads are counted apart from
// Applies, until the loop catches up.
func TestMaxFoldFailuresCountsReadsBetweenApplies(t *testing.T) {
	f := unreadableFold{newMemFold()}
	f.cursor = kvcore.RevisionCursor(1)
	var sessions []session
	for rev := range uint64(5) {
		sessions = append(sessions, session{events: []kvcore.Event{put("a", "v", rev+2), synced}})
	}
	w := &scriptWatcher{sessions: sessions, keys: []string{"a"}}
	cfg := kvcore.AppliedConfig{Scope: kvcore.AllKeys(), MaxFoldFailures: 3, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	err := kvcore.WatchApplied(t.Context(), w, f, cfg, func(context.Context, kvcore.Batch) error { return nil })
	if !errors.Is(err, kvcore.ErrFoldFailed) || !errors.Is(err, errInjected) {
		t.Fatalf("WatchApplied = %v, want ErrFoldFailed wrapping the fold's read error", err)
	}
	if f.Cursor() != kvcore.RevisionCursor(4) {
		t.Errorf("cursor %v, want rev 4: three sessions applied their batch, each then failed to read the fold", f.Cursor())
	}
}

// A batch whose watch failed while it was applied is not reported as
// caught up with the bucket: what came meanwhile is unknown, and the
// report that follows is the watch's failure.
func TestABatchWhoseWatchFailedIsNotReported(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	gate := make(chan struct{})
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced, put("a", "v", 2)}, ended: true, endErr: fmt.Errorf("consumer lost: %w", kvcore.ErrWatchFailed), endAfter: gate}}}
	var mu sync.Mutex
	var reports []kvcore.Progress
	stop := loop(t, w, f, kvcore.AppliedConfig{Window: kvcore.NoWindow, OnProgress: func(p kvcore.Progress) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, p)
	}}, func(_ context.Context, b kvcore.Batch) error {
		if len(b.Updates) > 0 {
			close(gate) // the watch fails while the batch is applied
			w.ended(0)
		}
		return nil
	})
	waitFor(t, "the failure reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reports) > 0 && reports[len(reports)-1].Err != nil
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range reports {
		if p.Cursor == kvcore.RevisionCursor(2) && p.Err == nil {
			t.Fatalf("reports %+v: the batch whose watch failed was reported without the failure", reports)
		}
	}
}

// markedScript is a scriptWatcher whose bucket mark never changes.
type markedScript struct{ *scriptWatcher }

func (markedScript) BucketMark(context.Context) (string, kvcore.Cursor, error) {
	return "m", kvcore.RevisionCursor(1), nil
}

// A sync that took a key's current entry past its cursor (the listing
// missed the key, the bucket had it at a later revision) does not record
// the bucket's mark as matched: the bucket may go back to that mark
// without the entry (a store restored from a copy taken then), and every
// later reconciliation, skipped on the mark, would keep the entry.
func TestASyncThatFoldedPastItsCursorRecordsNoMark(t *testing.T) {
	f := newMemFold()
	f.entries["k10"] = kvcore.Entry{Key: "k10", Value: []byte("old"), Version: kvcore.RevisionVersion(1)}
	w := &scriptWatcher{
		sessions: []session{{events: []kvcore.Event{put("k09", "v", 1), synced}}},
		keys:     []string{"k09"},
		present:  []string{"k10"}, // missed by the listing, found by Entry
		revs:     map[string]uint64{"k10": 2},
	}
	var mu sync.Mutex
	var marks []string
	synced := false
	stop := loop(t, markedScript{w}, f, kvcore.AppliedConfig{
		OnMark:     func(_ context.Context, m string) error { mu.Lock(); marks = append(marks, m); mu.Unlock(); return nil },
		OnProgress: func(p kvcore.Progress) { mu.Lock(); synced = synced || p.Synced; mu.Unlock() },
	}, func(context.Context, kvcore.Batch) error { return nil })
	waitFor(t, "the sync", func() bool { mu.Lock(); defer mu.Unlock(); return synced })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if e, err := f.Get("k10"); err != nil || e.Version != kvcore.RevisionVersion(2) {
		t.Fatalf("fold k10 = %+v, %v; want the bucket's entry at revision 2, past the cursor", e, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(marks, "m") {
		t.Errorf("marks recorded %q: the mark was recorded as matched with the fold past its cursor", marks)
	}
}
