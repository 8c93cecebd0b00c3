package kvcore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/memkv"
)

// recorder is an ApplyFunc that records every call together with what the
// fold held when it ran.
type recorder struct {
	fold *memFold
	fail func(call int, b kvcore.Batch) error

	mu      sync.Mutex
	calls   int
	batches []kvcore.Batch
	views   [][]string      // fold contents at each successful call
	under   []kvcore.Cursor // fold cursor at each successful call
}

func (r *recorder) apply(_ context.Context, b kvcore.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		if err := r.fail(r.calls, b); err != nil {
			return err
		}
	}
	b.Updates = slices.Clone(b.Updates)
	r.batches = append(r.batches, b)
	r.views = append(r.views, r.fold.values())
	r.under = append(r.under, r.fold.Cursor())
	return nil
}

func (r *recorder) applied() []kvcore.Batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

// appliedRevisions lists the revision of every update of every applied batch.
func (r *recorder) appliedRevisions() []uint64 {
	var revs []uint64
	for _, b := range r.applied() {
		for _, u := range b.Updates {
			if rev, ok := u.Version.Revision(); ok {
				revs = append(revs, rev)
			}
		}
	}
	return revs
}

// loop runs WatchApplied in the background; stop cancels it and returns its result.
func loop(t *testing.T, w kvcore.Source, f kvcore.Fold, cfg kvcore.AppliedConfig, apply kvcore.ApplyFunc) (stop func() error) {
	t.Helper()
	if cfg.Scope.Validate() != nil {
		cfg.Scope = kvcore.AllKeys()
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kvcore.WatchApplied(ctx, w, f, cfg, apply) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(10 * time.Second):
				result = errors.New("WatchApplied did not return after cancel")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitFor polls cond until it holds; it fails the test after 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestInitialSyncIsOneFullBatchAfterSynced(t *testing.T) {
	f := newMemFold()
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{
		put("a", "1", 1), put("b", "2", 2), put("c", "3", 3), synced, put("d", "4", 4),
	}}}}
	stop := loop(t, w, f, kvcore.AppliedConfig{Window: time.Millisecond}, r.apply)
	waitFor(t, "cursor 4", func() bool { return f.Cursor() == kvcore.RevisionCursor(4) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	b := r.applied()
	if len(b) != 2 {
		t.Fatalf("apply called %d times, want 2 (full sync, then d): %+v", len(b), b)
	}
	if !b[0].Full || len(b[0].Updates) != 0 || b[0].Cursor != kvcore.RevisionCursor(3) {
		t.Errorf("first batch = %+v, want a full batch with no removals at rev 3", b[0])
	}
	if want := []string{"a=1", "b=2", "c=3"}; !slices.Equal(r.views[0], want) {
		t.Errorf("full batch saw view %v, want the whole initial state %v", r.views[0], want)
	}
	if b[1].Full || len(b[1].Updates) != 1 || b[1].Updates[0].Key != "d" {
		t.Errorf("second batch = %+v, want incremental d", b[1])
	}
	if got := w.resumedFrom(); len(got) != 1 || !got[0].IsNone() {
		t.Errorf("watch opened from %v, want one state-sync watch", got)
	}
}

func TestNoPartialRenderWhenSyncIsInterrupted(t *testing.T) {
	f := newMemFold()
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{
		// The first sync dies before its Synced marker.
		{events: []kvcore.Event{put("a", "1", 1), put("b", "2", 2)}, ended: true, endErr: fmt.Errorf("%w: connection lost", kvcore.ErrWatchFailed)},
		{events: []kvcore.Event{put("a", "1", 1), put("b", "2", 2), put("c", "3", 3), synced}},
	}}
	stop := loop(t, w, f, kvcore.AppliedConfig{}, r.apply)
	waitFor(t, "cursor 3", func() bool { return f.Cursor() == kvcore.RevisionCursor(3) })
	stop()

	b := r.applied()
	if len(b) != 1 || !b[0].Full {
		t.Fatalf("batches = %+v, want exactly one full batch after the complete sync", b)
	}
	if want := []string{"a=1", "b=2", "c=3"}; !slices.Equal(r.views[0], want) {
		t.Errorf("full batch saw %v, want %v", r.views[0], want)
	}
	if got := w.resumedFrom(); len(got) != 2 || !got[1].IsNone() {
		t.Errorf("watch opened from %v, want the retry to state-sync again (the fold has no cursor)", got)
	}
}

func TestDeltaResumeAdvancesCursorOnlyAfterApply(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(5)
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{
		put("a", "6", 6), put("b", "7", 7), synced, put("c", "8", 8), put("d", "9", 9),
	}}}}
	stop := loop(t, w, f, kvcore.AppliedConfig{MaxBatch: 2, Window: time.Hour}, r.apply)
	waitFor(t, "cursor 9", func() bool { return f.Cursor() == kvcore.RevisionCursor(9) })
	stop()

	if got := w.resumedFrom(); len(got) != 1 || got[0] != kvcore.RevisionCursor(5) {
		t.Fatalf("watch opened from %v, want the fold's cursor 5", got)
	}
	b := r.applied()
	if len(b) != 2 || b[0].Full || b[1].Full {
		t.Fatalf("batches = %+v, want two incremental batches", b)
	}
	for i, want := range []kvcore.Cursor{kvcore.RevisionCursor(5), kvcore.RevisionCursor(7)} {
		if r.under[i] != want {
			t.Errorf("apply %d ran with the fold at %v, want %v (cursor must move only after apply)", i, r.under[i], want)
		}
	}
	if want := []string{"a=6", "b=7"}; !slices.Equal(r.views[0], want) {
		t.Errorf("apply 0 saw %v, want the state after its batch %v", r.views[0], want)
	}
}

func TestFailedApplyIsRetriedWithTheSameBatch(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	var progress []kvcore.Progress
	var pmu sync.Mutex
	r := &recorder{fold: f, fail: func(call int, b kvcore.Batch) error {
		if call <= 3 {
			if f.Cursor() != kvcore.RevisionCursor(1) {
				t.Errorf("cursor moved to %v while apply was failing", f.Cursor())
			}
			return errInjected
		}
		return nil
	}}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{put("a", "2", 2), put("b", "3", 3), synced}}}}
	stop := loop(t, w, f, kvcore.AppliedConfig{
		OnProgress: func(p kvcore.Progress) { pmu.Lock(); progress = append(progress, p); pmu.Unlock() },
	}, r.apply)
	waitFor(t, "cursor 3", func() bool { return f.Cursor() == kvcore.RevisionCursor(3) })
	stop()

	if got := r.appliedRevisions(); !slices.Equal(got, []uint64{2, 3}) {
		t.Errorf("applied revisions %v, want [2 3] exactly once after the retries", got)
	}
	pmu.Lock()
	defer pmu.Unlock()
	var sawFailure, recovered bool
	for _, p := range progress {
		if p.Failures == 3 && errors.Is(p.Err, errInjected) {
			sawFailure = true
		}
		if sawFailure && p.Err == nil {
			recovered = true
		}
	}
	if !sawFailure || !recovered {
		t.Errorf("progress %+v: want 3 reported failures, then a recovery", progress)
	}
}

// TestNoRetryReturnsTheFirstFailure: with NoRetry, a failed apply or a
// failed watch ends WatchApplied with its error, tried once, neither
// reported as a failure being retried nor logged.
func TestNoRetryReturnsTheFirstFailure(t *testing.T) {
	for _, c := range []struct {
		name    string
		fail    bool // apply fails; else the watch does
		session session
	}{
		{"apply", true, session{events: []kvcore.Event{put("a", "2", 2), synced}}},
		{"watch", false, session{events: []kvcore.Event{put("a", "2", 2)}, ended: true, endErr: fmt.Errorf("%w: %w", kvcore.ErrWatchFailed, errInjected)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newMemFold()
			f.cursor = kvcore.RevisionCursor(1)
			r := &recorder{fold: f, fail: func(int, kvcore.Batch) error {
				if c.fail {
					return errInjected
				}
				return nil
			}}
			w := &scriptWatcher{sessions: []session{c.session, {events: []kvcore.Event{put("a", "2", 2), synced}}}}
			var logs bytes.Buffer
			var failures []kvcore.Progress
			// Retries would go on until the deadline.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err := kvcore.WatchApplied(ctx, w, f, kvcore.AppliedConfig{
				Scope: kvcore.AllKeys(), Window: time.Hour, NoRetry: true, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				OnProgress: func(p kvcore.Progress) {
					if p.Err != nil {
						failures = append(failures, p)
					}
				},
			}, r.apply)
			if !errors.Is(err, errInjected) {
				t.Fatalf("WatchApplied = %v, want the injected failure", err)
			}
			if r.calls > 1 || len(w.resumedFrom()) != 1 || f.Cursor() != kvcore.RevisionCursor(1) {
				t.Errorf("%d applies, %d watches, cursor %v: want one try, and the cursor left at 1", r.calls, len(w.resumedFrom()), f.Cursor())
			}
			if len(failures) > 0 || strings.Contains(logs.String(), "failed") {
				t.Errorf("the failure was reported (%+v) or logged:\n%s", failures, logs.String())
			}
		})
	}
}

func TestUnknownVersionDoesNotMoveCursor(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(4)
	r := &recorder{fold: f}
	unknown := kvcore.Event{Update: kvcore.Update{Op: kvcore.OpPut, Key: "u", Value: []byte("x")}}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{put("a", "1", 5), unknown, synced}}}}
	stop := loop(t, w, f, kvcore.AppliedConfig{Window: time.Hour}, r.apply)
	waitFor(t, "synced batch", func() bool { return len(r.applied()) == 1 })
	stop()
	if f.Cursor() != kvcore.RevisionCursor(5) {
		t.Errorf("cursor = %v, want rev 5 (the unknown-version update must neither move nor clobber it)", f.Cursor())
	}
	if got := r.applied()[0].Updates; len(got) != 2 {
		t.Errorf("batch = %v, want both updates applied", got)
	}
}

func TestExpiredCursorResyncsAndDeletesVanishedKeys(t *testing.T) {
	f := newMemFold()
	f.entries["node.a"] = kvcore.Entry{Key: "node.a", Value: []byte("old")}
	f.entries["node.b"] = kvcore.Entry{Key: "node.b", Value: []byte("gone")}
	f.entries["other.z"] = kvcore.Entry{Key: "other.z", Value: []byte("out of scope")}
	f.cursor = kvcore.RevisionCursor(2)
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{
		{openErr: fmt.Errorf("%w: first sequence 40", kvcore.ErrCursorExpired)},
		{events: []kvcore.Event{put("node.a", "new", 41), del("node.c", 42), synced}},
	}}
	stop := loop(t, w, f, kvcore.AppliedConfig{Scope: kvcore.Prefixes("node.")}, r.apply)
	waitFor(t, "cursor 42", func() bool { return f.Cursor() == kvcore.RevisionCursor(42) })
	stop()

	if want := []string{"node.a=new", "other.z=out of scope"}; !slices.Equal(f.values(), want) {
		t.Errorf("fold = %v, want %v (node.b vanished; other.z is outside the scope)", f.values(), want)
	}
	b := r.applied()
	if len(b) != 1 || !b[0].Full {
		t.Fatalf("batches = %+v, want one full batch", b)
	}
	var removed []string
	for _, u := range b[0].Updates {
		if !u.IsRemoval() {
			t.Errorf("full batch lists a non-removal %+v", u)
		}
		removed = append(removed, u.Key)
	}
	if want := []string{"node.c", "node.b"}; !slices.Equal(removed, want) {
		t.Errorf("full batch removals %v, want %v (markers, then synthetic deletes)", removed, want)
	}
	if got := w.resumedFrom(); len(got) != 2 || got[0] != kvcore.RevisionCursor(2) || !got[1].IsNone() {
		t.Errorf("watch opened from %v, want [rev 2, none]", got)
	}
}

func TestExpiryDuringWatchResyncs(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{
		{events: []kvcore.Event{synced, put("a", "2", 2)}, ended: true, endErr: fmt.Errorf("%w: retention overran live watch", kvcore.ErrCursorExpired)},
		{events: []kvcore.Event{put("a", "9", 9), synced}},
	}}
	stop := loop(t, w, f, kvcore.AppliedConfig{Window: time.Hour}, r.apply)
	waitFor(t, "cursor 9", func() bool { return f.Cursor() == kvcore.RevisionCursor(9) })
	stop()
	if got := w.resumedFrom(); len(got) != 2 || !got[1].IsNone() {
		t.Errorf("watch opened from %v, want a state-sync after the expiry", got)
	}
	if b := r.applied(); !b[len(b)-1].Full {
		t.Errorf("last batch %+v, want the resync's full batch", b[len(b)-1])
	}
}

func TestFailedWatchResumesFromFoldCursor(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(5)
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{
		// 6 and 7 are applied; 8 is still in the open window when the watch fails.
		{events: []kvcore.Event{put("a", "6", 6), put("b", "7", 7), synced, put("c", "8", 8)}, ended: true, endErr: fmt.Errorf("%w: boom", kvcore.ErrWatchFailed)},
		{events: []kvcore.Event{put("c", "8", 8), synced}},
	}}
	stop := loop(t, w, f, kvcore.AppliedConfig{Window: time.Hour}, r.apply)
	waitFor(t, "cursor 8", func() bool { return f.Cursor() == kvcore.RevisionCursor(8) })
	stop()
	if got := w.resumedFrom(); len(got) != 2 || got[1] != kvcore.RevisionCursor(7) {
		t.Errorf("watch opened from %v, want the retry from the fold's cursor rev 7", got)
	}
	if got := r.appliedRevisions(); !slices.Equal(got, []uint64{6, 7, 8}) {
		t.Errorf("applied %v, want [6 7 8]", got)
	}
}

func TestFullRenderAfterCatchingUpFromCursor(t *testing.T) {
	f := newMemFold()
	f.entries["a"] = kvcore.Entry{Key: "a", Value: []byte("1")}
	f.cursor = kvcore.RevisionCursor(1)
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{put("b", "2", 2), synced, put("c", "3", 3)}}}}
	stop := loop(t, w, f, kvcore.AppliedConfig{FullRender: true, Window: time.Hour, MaxBatch: 1}, r.apply)
	waitFor(t, "cursor 3", func() bool { return f.Cursor() == kvcore.RevisionCursor(3) })
	stop()
	b := r.applied()
	if len(b) != 3 || b[0].Full || !b[1].Full || b[2].Full {
		t.Fatalf("batches = %+v, want incremental, full, incremental", b)
	}
	if b[1].Cursor != kvcore.RevisionCursor(2) || !slices.Equal(r.views[1], []string{"a=1", "b=2"}) {
		t.Errorf("full batch %+v saw %v, want rev 2 and the whole fold", b[1], r.views[1])
	}
}

func TestShutdownAbandonsOpenBatch(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced, put("a", "2", 2)}}}}
	stop := loop(t, w, f, kvcore.AppliedConfig{Window: time.Hour}, r.apply)
	waitFor(t, "the update to be received", func() bool { return len(w.resumedFrom()) == 1 })
	time.Sleep(10 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatalf("WatchApplied returned %v after cancel, want nil", err)
	}
	if len(r.applied()) != 0 || f.Cursor() != kvcore.RevisionCursor(1) {
		t.Errorf("after shutdown: applied %v, cursor %v; want nothing applied and cursor 1", r.applied(), f.Cursor())
	}
}

func TestEmptyScopeIsRefused(t *testing.T) {
	err := kvcore.WatchApplied(context.Background(), &scriptWatcher{}, newMemFold(), kvcore.AppliedConfig{Scope: kvcore.Prefixes()}, func(context.Context, kvcore.Batch) error { return nil })
	if !errors.Is(err, kvcore.ErrEmptyScope) {
		t.Fatalf("err = %v, want ErrEmptyScope", err)
	}
}

// A nil source, fold or apply function is refused at once, with the
// argument named, not found by a nil dereference after a whole sync.
func TestNilArgumentsAreRefused(t *testing.T) {
	apply := func(context.Context, kvcore.Batch) error { return nil }
	cfg := kvcore.AppliedConfig{Scope: kvcore.AllKeys()}
	for _, c := range []struct {
		name  string
		src   kvcore.Source
		fold  kvcore.Fold
		apply kvcore.ApplyFunc
	}{
		{"src", nil, newMemFold(), apply},
		{"fold", &scriptWatcher{}, nil, apply},
		{"apply", &scriptWatcher{}, newMemFold(), nil},
	} {
		err := kvcore.WatchApplied(context.Background(), c.src, c.fold, cfg, c.apply)
		if err == nil || !strings.Contains(err.Error(), c.name+" is nil") {
			t.Errorf("nil %s: err = %v, want one naming it", c.name, err)
		}
	}
}

// TestCrashAtEveryStepLosesNothing crashes the loop at every fold write and
// every apply of a stream of batches, restarts it on what the fold had
// persisted, and checks invariant 1: every update at or below the persisted
// cursor had been applied, and after the restart every update is applied.
func TestCrashAtEveryStepLosesNothing(t *testing.T) {
	const n = 5 // rev 1 in the initial sync, then batches [2 3] and [4 5]
	stream := func(from uint64) []kvcore.Event {
		var evs []kvcore.Event
		if from == 0 {
			evs = append(evs, put("k1", "v1", 1), synced)
			from = 1
		} else {
			evs = append(evs, synced)
		}
		for rev := from + 1; rev <= n; rev++ {
			evs = append(evs, put(fmt.Sprintf("k%d", rev), fmt.Sprintf("v%d", rev), rev))
		}
		return evs
	}
	for crashAt := 1; ; crashAt++ {
		f := newMemFold()
		applied := map[uint64]bool{}
		var mu sync.Mutex
		step, crashed := 0, make(chan struct{})
		// Every fold write and every apply is a step; at step crashAt the
		// process "dies": the step fails and the loop is stopped.
		crash := func() bool {
			mu.Lock()
			defer mu.Unlock()
			step++
			if step == crashAt {
				close(crashed)
				return true
			}
			return step > crashAt
		}
		f.fail = func(int, []kvcore.Update, kvcore.Cursor) error {
			if crash() {
				return errInjected
			}
			return nil
		}
		apply := func(_ context.Context, b kvcore.Batch) error {
			if crash() {
				return errInjected
			}
			mu.Lock()
			defer mu.Unlock()
			for _, u := range b.Updates {
				rev, _ := u.Version.Revision()
				applied[rev] = true
			}
			if b.Full {
				_ = f.Range(context.Background(), "", "", func(e kvcore.Entry) error {
					rev, _ := e.Version.Revision()
					applied[rev] = true
					return nil
				})
			}
			return nil
		}
		w := &scriptWatcher{sessions: []session{{events: stream(0)}}}
		stop := loop(t, w, f, kvcore.AppliedConfig{MaxBatch: 2, Window: time.Hour}, apply)
		finished := false
		waitFor(t, "a crash or the end of the stream", func() bool {
			select {
			case <-crashed:
				return true
			default:
				finished = f.Cursor() == kvcore.RevisionCursor(n)
				return finished
			}
		})
		stop()
		if finished {
			if crashAt != 10 {
				t.Fatalf("the stream finished after %d steps, want 9 (3 per batch: fold, apply, checkpoint)", crashAt-1)
			}
			return // crashAt is past the last step: every step was covered
		}
		mu.Lock()
		persisted, _ := f.Cursor().Revision()
		for rev := uint64(1); rev <= persisted; rev++ {
			if !applied[rev] {
				t.Errorf("crash at step %d: persisted cursor %d but rev %d was never applied", crashAt, persisted, rev)
			}
		}
		f.fail = nil
		step = -1 << 30 // no more crashes
		mu.Unlock()

		// Restart on the persisted fold: everything must end up applied.
		w2 := &scriptWatcher{sessions: []session{{events: stream(persisted)}}}
		stop2 := loop(t, w2, f, kvcore.AppliedConfig{MaxBatch: 2, Window: time.Millisecond}, apply)
		waitFor(t, "restart to catch up", func() bool { return f.Cursor() == kvcore.RevisionCursor(n) })
		stop2()
		mu.Lock()
		for rev := uint64(1); rev <= n; rev++ {
			if !applied[rev] {
				t.Errorf("crash at step %d: rev %d lost after restart", crashAt, rev)
			}
		}
		mu.Unlock()
	}
}

func TestFailingBatchAbsorbsLaterFix(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	// apply refuses any batch that leaves key a at "bad".
	r := &recorder{fold: f, fail: func(_ int, b kvcore.Batch) error {
		last := ""
		for _, u := range b.Updates {
			if u.Key == "a" {
				last = string(u.Value)
			}
		}
		if last == "bad" {
			return errInjected
		}
		return nil
	}}
	live := make(chan kvcore.Event)
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced, put("a", "bad", 2)}, live: live}}}
	stop := loop(t, w, f, kvcore.AppliedConfig{Window: time.Millisecond}, r.apply)
	waitFor(t, "the bad batch to fail twice", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.calls >= 2 })
	if f.Cursor() != kvcore.RevisionCursor(1) {
		t.Fatalf("cursor moved to %v past a failing batch", f.Cursor())
	}
	live <- put("a", "fixed", 3)
	waitFor(t, "the fix to land", func() bool { return f.Cursor() == kvcore.RevisionCursor(3) })
	stop()
	b := r.applied()
	if len(b) != 1 || len(b[0].Updates) != 1 || string(b[0].Updates[0].Value) != "fixed" {
		t.Fatalf("applied %+v, want one batch [a=fixed]", b)
	}
	if got := f.values(); !slices.Equal(got, []string{"a=fixed"}) {
		t.Errorf("fold = %v", got)
	}
}

// A retried batch holds each key's latest update only. apply here refuses
// any batch with an update a=bad, as the host refuses a plugin's write of a
// value over a file limit even when a later write of the same file in the
// call would fit: without the superseded update dropped, the fix in the
// bucket could never get through (nor a change of another key after it).
func TestRetryDropsSupersededUpdates(t *testing.T) {
	for _, tt := range []struct {
		name   string
		events []kvcore.Event // the batch's first attempt
		fix    []kvcore.Event // arrive while it backs off; nil: none
		rev    uint64         // the cursor once the fix landed
		want   string
	}{
		{"fix absorbed", []kvcore.Event{synced, put("a", "bad", 2)}, []kvcore.Event{put("a", "good", 3), put("b", "x", 4)}, 4, "[a=good b=x]"},
		{"fix in the batch", []kvcore.Event{put("a", "bad", 2), put("b", "x", 3), put("a", "good", 4), synced}, nil, 4, "[b=x a=good]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newMemFold()
			f.cursor = kvcore.RevisionCursor(1)
			r := &recorder{fold: f, fail: func(_ int, b kvcore.Batch) error {
				for _, u := range b.Updates {
					if string(u.Value) == "bad" {
						return errInjected
					}
				}
				return nil
			}}
			live := make(chan kvcore.Event)
			w := &scriptWatcher{sessions: []session{{events: tt.events, live: live}}}
			stop := loop(t, w, f, kvcore.AppliedConfig{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, r.apply)
			if tt.fix != nil {
				waitFor(t, "the bad batch to fail", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.calls >= 1 })
				for _, ev := range tt.fix {
					live <- ev
				}
			}
			waitFor(t, "the fix to land", func() bool { return f.Cursor() == kvcore.RevisionCursor(tt.rev) })
			stop()
			b := r.applied()
			var got []string
			for _, u := range b[len(b)-1].Updates {
				got = append(got, u.Key+"="+string(u.Value))
			}
			if s := fmt.Sprint(got); len(b) != 1 || s != tt.want {
				t.Fatalf("applied %d batches, the last %s; want one batch %s", len(b), s, tt.want)
			}
		})
	}
}

func TestResumeReconcilesKeysWhoseMarkersVanished(t *testing.T) {
	f := newMemFold()
	for _, k := range []string{"node.a", "node.b", "node.c", "other.z"} {
		f.entries[k] = kvcore.Entry{Key: k, Value: []byte("v"), Version: kvcore.RevisionVersion(1)}
	}
	f.cursor = kvcore.RevisionCursor(5)
	r := &recorder{fold: f}
	// node.b was deleted while nobody watched and its marker is gone: the
	// delta stream has nothing to say about it; only the key listing does.
	w := &scriptWatcher{
		sessions: []session{{events: []kvcore.Event{put("node.d", "new", 6), synced}}},
		keys:     []string{"node.a", "node.c", "node.d", "other.z"},
	}
	stop := loop(t, w, f, kvcore.AppliedConfig{Scope: kvcore.Prefixes("node."), Window: time.Hour}, r.apply)
	waitFor(t, "the reconciliation", func() bool { return len(r.applied()) == 2 })
	stop()
	if want := []string{"node.a=v", "node.c=v", "node.d=new", "other.z=v"}; !slices.Equal(f.values(), want) {
		t.Errorf("fold = %v, want %v", f.values(), want)
	}
	b := r.applied()[1]
	if b.Full || len(b.Updates) != 1 || b.Updates[0].Key != "node.b" || b.Updates[0].Op != kvcore.OpDelete || !b.Updates[0].Version.IsUnknown() {
		t.Errorf("reconcile batch = %+v, want one synthetic delete of node.b", b)
	}
	if f.Cursor() != kvcore.RevisionCursor(6) {
		t.Errorf("cursor = %v, want rev 6", f.Cursor())
	}
}

// A key the bucket lists that the fold lacks although its cursor is past
// the key's revision (nats-server 2.15 can bring a purged record back after
// a crash) is put into the fold and applied by the reconciliation: files
// equal the bucket, on this host as on one that starts afresh.
func TestReconcileAddsKeysTheFoldLacks(t *testing.T) {
	f := newMemFold()
	f.entries["a"] = kvcore.Entry{Key: "a", Value: []byte("v"), Version: kvcore.RevisionVersion(1)}
	f.cursor = kvcore.RevisionCursor(7)
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced}}}, keys: []string{"a", "z"}}
	stop := loop(t, w, f, kvcore.AppliedConfig{Window: time.Hour}, r.apply)
	waitFor(t, "the reconciliation", func() bool { return len(r.applied()) == 1 })
	stop()
	if want := []string{"a=v", "z=v"}; !slices.Equal(f.values(), want) {
		t.Errorf("fold = %v, want %v", f.values(), want)
	}
	b := r.applied()[0]
	if b.Full || len(b.Updates) != 1 || b.Updates[0].Key != "z" || b.Updates[0].Op != kvcore.OpPut || string(b.Updates[0].Value) != "v" {
		t.Errorf("reconcile batch = %+v, want one put of z", b)
	}
	if f.Cursor() != kvcore.RevisionCursor(7) {
		t.Errorf("cursor = %v, want rev 7", f.Cursor())
	}
}

// The reconciliation warns of the keys the fold lacks at revisions its
// cursor passed, not of those written after it (the watch delivers them
// too): a restart while the bucket is written to is not an anomaly.
func TestReconcileWarnsOnlyOfKeysTheCursorPassed(t *testing.T) {
	for _, tc := range []struct {
		rev  uint64
		warn bool
	}{{5, true}, {7, true}, {9, false}} {
		t.Run(fmt.Sprint(tc.rev), func(t *testing.T) {
			f := newMemFold()
			f.entries["a"] = kvcore.Entry{Key: "a", Value: []byte("v"), Version: kvcore.RevisionVersion(1)}
			f.cursor = kvcore.RevisionCursor(7)
			r := &recorder{fold: f}
			w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced}}}, keys: []string{"a", "z"}, revs: map[string]uint64{"z": tc.rev}}
			var logs logtest.Buffer
			cfg := kvcore.AppliedConfig{Window: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			stop := loop(t, w, f, cfg, r.apply)
			waitFor(t, "the reconciliation", func() bool { return len(r.applied()) == 1 })
			stop()
			if b := r.applied()[0]; len(b.Updates) != 1 || b.Updates[0].Key != "z" {
				t.Fatalf("reconcile batch = %+v, want one put of z", b)
			}
			if warned := logs.Count("passed without them") > 0; warned != tc.warn {
				t.Fatalf("z at revision %d, cursor at 7: warned %v, want %v\n%s", tc.rev, warned, tc.warn, logs.String())
			}
		})
	}
}

func TestPeriodicReconcile(t *testing.T) {
	f := newMemFold()
	f.entries["a"] = kvcore.Entry{Key: "a", Value: []byte("1")}
	f.cursor = kvcore.RevisionCursor(1)
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced}}}, keys: []string{"a"}}
	stop := loop(t, w, f, kvcore.AppliedConfig{Reconcile: 5 * time.Millisecond}, r.apply)
	waitFor(t, "several reconciliations", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.listings >= 3 })
	w.mu.Lock()
	w.keys = []string{}
	w.mu.Unlock()
	waitFor(t, "a to be reconciled away", func() bool { return len(f.values()) == 0 })
	stop()
}

func TestReconcileListingFailureIsRetriedNotIgnored(t *testing.T) {
	f := newMemFold()
	f.entries["a"] = kvcore.Entry{Key: "a", Value: []byte("1")}
	f.cursor = kvcore.RevisionCursor(1)
	r := &recorder{fold: f}
	var progress []kvcore.Progress
	var mu sync.Mutex
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced}}, {events: []kvcore.Event{synced}}}, keysErr: errInjected}
	stop := loop(t, w, f, kvcore.AppliedConfig{OnProgress: func(p kvcore.Progress) { mu.Lock(); progress = append(progress, p); mu.Unlock() }}, r.apply)
	waitFor(t, "a second session after the listing failed", func() bool { return len(w.resumedFrom()) >= 2 })
	stop()
	mu.Lock()
	defer mu.Unlock()
	for _, p := range progress {
		if p.Synced {
			t.Fatalf("reported caught up although the reconciliation could not list keys: %+v", p)
		}
	}
	if len(progress) == 0 || !errors.Is(progress[len(progress)-1].Err, errInjected) {
		t.Errorf("progress %+v, want the listing failure reported", progress)
	}
}

// A full render owed by FullRender must survive the Synced marker arriving
// while an earlier backlog batch is being retried.
func TestOwedFullRenderSurvivesSyncedDuringRetry(t *testing.T) {
	f := newMemFold()
	f.entries["a"] = kvcore.Entry{Key: "a", Value: []byte("1")}
	f.cursor = kvcore.RevisionCursor(1)
	r := &recorder{fold: f, fail: func(call int, b kvcore.Batch) error {
		if call == 1 {
			return errInjected // the first backlog batch fails once
		}
		return nil
	}}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{put("b", "2", 2), synced, put("c", "3", 3)}}}}
	stop := loop(t, w, f, kvcore.AppliedConfig{FullRender: true, Window: time.Hour, MaxBatch: 1, MinBackoff: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, r.apply)
	waitFor(t, "cursor 3", func() bool { return f.Cursor() == kvcore.RevisionCursor(3) })
	stop()
	b := r.applied()
	if len(b) < 2 || b[0].Full || !b[len(b)-1].Full && !b[1].Full {
		t.Fatalf("batches = %+v, want the backlog (with what its retry absorbed), then the owed full render", b)
	}
}

// While apply keeps failing, folding the updates it absorbs must not report
// the watch healthy again.
func TestHealthDoesNotFlapWhileApplyFails(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	r := &recorder{fold: f, fail: func(_ int, b kvcore.Batch) error {
		for _, u := range b.Updates {
			if u.Key == "bad" {
				return errInjected
			}
		}
		return nil
	}}
	live := make(chan kvcore.Event)
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced, put("bad", "x", 2)}, live: live}}}
	var mu sync.Mutex
	var reports []kvcore.Progress
	stop := loop(t, w, f, kvcore.AppliedConfig{
		Window: time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		OnProgress: func(p kvcore.Progress) { mu.Lock(); reports = append(reports, p); mu.Unlock() },
	}, r.apply)
	waitFor(t, "the first failure", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.calls >= 1 })
	for i := range 5 {
		live <- put("other", "y", uint64(3+i))
	}
	waitFor(t, "more failures", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.calls >= 4 })
	stop()
	mu.Lock()
	defer mu.Unlock()
	failing := false
	for _, p := range reports {
		if p.Err != nil {
			failing = true
		} else if failing {
			t.Fatalf("progress turned healthy (%+v) although no apply succeeded", p)
		}
	}
}

// Shutdown lets an apply in flight finish, with a live context, and
// checkpoints it.
func TestShutdownDrainsApplyInFlight(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	entered, release := make(chan struct{}), make(chan struct{})
	var ctxErr error
	apply := func(ctx context.Context, b kvcore.Batch) error {
		close(entered)
		<-release
		ctxErr = ctx.Err()
		return nil
	}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced, put("a", "2", 2)}}}}
	stop := loop(t, w, f, kvcore.AppliedConfig{}, apply)
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(20 * time.Millisecond) // let the cancellation land while apply runs
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if ctxErr != nil {
		t.Errorf("apply's context was cancelled (%v) while it ran", ctxErr)
	}
	if f.Cursor() != kvcore.RevisionCursor(2) {
		t.Errorf("cursor = %v after the drained apply, want rev 2", f.Cursor())
	}
}

func TestRepeatedExpiryBacksOffAndReports(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	r := &recorder{fold: f}
	expired := fmt.Errorf("%w: retention overran live watch", kvcore.ErrCursorExpired)
	var mu sync.Mutex
	var reports []kvcore.Progress
	w := &scriptWatcher{sessions: []session{
		{openErr: expired},
		{events: []kvcore.Event{put("a", "1", 10), synced}, ended: true, endErr: expired},
		{events: []kvcore.Event{put("a", "1", 20), synced}, ended: true, endErr: expired},
	}}
	stop := loop(t, w, f, kvcore.AppliedConfig{OnProgress: func(p kvcore.Progress) { mu.Lock(); reports = append(reports, p); mu.Unlock() }}, r.apply)
	waitFor(t, "four sessions", func() bool { return len(w.resumedFrom()) >= 4 })
	stop()
	mu.Lock()
	defer mu.Unlock()
	reported := false
	for _, p := range reports {
		reported = reported || errors.Is(p.Err, kvcore.ErrCursorExpired)
	}
	if !reported {
		t.Error("expiring again and again was never reported as a failure")
	}
}

// A listing taken while the bucket changes can miss a live key: the loop
// must confirm a key is gone before it deletes it.
func TestReconcileConfirmsBeforeDeleting(t *testing.T) {
	f := newMemFold()
	for _, k := range []string{"a", "b", "c"} {
		f.entries[k] = kvcore.Entry{Key: k, Value: []byte("v")}
	}
	f.cursor = kvcore.RevisionCursor(3)
	r := &recorder{fold: f}
	w := &scriptWatcher{
		sessions: []session{{events: []kvcore.Event{synced}}},
		keys:     []string{"a"},
		present:  []string{"b"}, // missed by the listing, still there
	}
	stop := loop(t, w, f, kvcore.AppliedConfig{}, r.apply)
	waitFor(t, "the reconciliation", func() bool { return len(r.applied()) == 1 })
	stop()
	if got := f.values(); !slices.Equal(got, []string{"a=v", "b=v"}) {
		t.Errorf("fold = %v, want only c removed (b still exists)", got)
	}
}

// Keys a listing missed that hold other values than the fold's (written
// while the listing ran, as on every restart under writes) are taken from
// the bucket and logged on one line, with their count, not one line each;
// the line about vanished keys counts only the deletes.
func TestReconcileLogsReplacedKeysOnce(t *testing.T) {
	f := newMemFold()
	var present []string
	for i := range 30 {
		k := fmt.Sprintf("k%02d", i)
		f.entries[k] = kvcore.Entry{Key: k, Value: []byte("old")}
		present = append(present, k)
	}
	f.entries["gone"] = kvcore.Entry{Key: "gone", Value: []byte("v")}
	f.cursor = kvcore.RevisionCursor(40)
	r := &recorder{fold: f}
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced}}}, keys: []string{"a"}, present: present}
	var logs logtest.Buffer
	stop := loop(t, w, f, kvcore.AppliedConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, r.apply)
	waitFor(t, "the reconciliation", func() bool { return len(r.applied()) == 1 })
	stop()
	if got := f.values(); len(got) != 31 || got[0] != "a=v" || got[1] != "k00=v" || slices.Contains(got, "gone=v") {
		t.Errorf("fold = %v, want a, k00..k29 taken from the bucket, gone removed", got)
	}
	const replaced = `msg="keys missing from the bucket's listing exist with other values; taking the bucket's" scope=* keys=30 first="[k00 k01 k02 k03 k04 k05 k06 k07 k08 k09]"`
	if logs.Count(replaced) != 1 || logs.Count("taking the bucket's") != 1 || logs.Count(`msg="removing keys that vanished from the bucket" scope=* keys=1`) != 1 {
		t.Errorf("want one line of the 30 replaced keys and one of the 1 removed:\n%s", logs.String())
	}
}

// A periodic reconciliation that comes due while a resumed session is still
// applying its backlog must wait for the Synced event: running it then
// would report the loop caught up while it is not.
func TestPeriodicReconcileWaitsForCatchUp(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	r := &recorder{fold: f}
	live := make(chan kvcore.Event)
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{put("a", "2", 2)}, live: live}}, keys: []string{"a"}}
	var mu sync.Mutex
	sent, early := false, false
	stop := loop(t, w, f, kvcore.AppliedConfig{Reconcile: time.Millisecond, Window: time.Millisecond, OnProgress: func(p kvcore.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Synced && !sent {
			early = true
		}
	}}, r.apply)
	waitFor(t, "the backlog's first batch", func() bool { return f.Cursor() == kvcore.RevisionCursor(2) })
	time.Sleep(20 * time.Millisecond) // reconciliations come due meanwhile
	mu.Lock()
	sent = true
	mu.Unlock()
	live <- synced
	waitFor(t, "the reconciliation after catching up", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.listings > 0 })
	stop()
	mu.Lock()
	defer mu.Unlock()
	if early {
		t.Error("reported caught up before the Synced event")
	}
}

// A watch that failed and was reopened reports its recovery once it has
// caught up, even when no change follows: nothing else would clear the error.
func TestReopenedWatchClearsItsFailureWhenCaughtUp(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(5)
	var mu sync.Mutex
	var last kvcore.Progress
	w := &scriptWatcher{sessions: []session{
		{events: []kvcore.Event{synced}, ended: true, endErr: fmt.Errorf("%w: consumer lost", kvcore.ErrWatchFailed)},
		{events: []kvcore.Event{synced}},
	}}
	stop := loop(t, w, f, kvcore.AppliedConfig{OnProgress: func(p kvcore.Progress) {
		mu.Lock()
		defer mu.Unlock()
		last = p
	}}, (&recorder{fold: f}).apply)
	waitFor(t, "the second session", func() bool { return len(w.resumedFrom()) == 2 })
	waitFor(t, "the failure to clear", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return last.Synced && last.Err == nil && last.Failures == 0
	})
	stop()
}

// hidingSource lists keys without hide, as a listing taken while the bucket
// changes may: Entry still finds it.
type hidingSource struct {
	kvcore.Store
	hide string
}

func (s hidingSource) Keys(ctx context.Context, prefix string) ([]string, error) {
	keys, err := s.Store.Keys(ctx, prefix)
	return slices.DeleteFunc(keys, func(k string) bool { return k == s.hide }), err
}

// A key the listing misses but the bucket has with another value than the
// fold's (a value from a replaced bucket) takes the bucket's value: keeping
// the fold's would leave a stale output under the cursor.
func TestReconcileTakesTheBucketsValueOfAKeyTheListingMissed(t *testing.T) {
	ctx := context.Background()
	store, err := memkv.New().Store(ctx, kvcore.StoreConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := store.Put(ctx, "k", []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, "other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	f := newMemFold()
	f.entries["k"] = kvcore.Entry{Key: "k", Value: []byte("stale"), Version: v}
	f.cursor = kvcore.RevisionCursor(2)
	r := &recorder{fold: f}
	stop := loop(t, hidingSource{store, "k"}, f, kvcore.AppliedConfig{}, r.apply)
	waitFor(t, "the fold to take the bucket's value", func() bool {
		e, err := f.Get("k")
		return err == nil && string(e.Value) == "new"
	})
	stop()
}

// The progress says how many records the watch had yet to deliver after
// the last one applied, so that a loop trailing its bucket under a burst
// shows (Pending above 0), and stops showing once it applied the last, or
// once no update followed for a while.
func TestProgressSaysWhenTheLoopTrails(t *testing.T) {
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	r := &recorder{fold: f}
	live := make(chan kvcore.Event)
	w := &scriptWatcher{sessions: []session{{events: []kvcore.Event{synced}, live: live}}}
	var mu sync.Mutex
	var last kvcore.Progress
	stop := loop(t, w, f, kvcore.AppliedConfig{Window: -1, OnProgress: func(p kvcore.Progress) { mu.Lock(); last = p; mu.Unlock() }}, r.apply)
	defer stop()
	pending := func(want uint64) {
		t.Helper()
		waitFor(t, fmt.Sprintf("a progress report of %d pending", want), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return last.Synced && last.Pending == want
		})
	}
	pending(0)
	ev := put("a", "1", 2)
	ev.Pending = 7
	live <- ev
	pending(7)
	// No update follows: what was counted brought none (heartbeats).
	pending(0)
	ev = put("b", "1", 3)
	ev.Pending = 3
	live <- ev
	pending(3)
	live <- put("c", "1", 4) // the last of the burst
	pending(0)
}
