package kvcore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// versionedScript is a scriptWatcher whose bucket, as Entry, Keys and a
// versioned listing see it, is bucket.
type versionedScript struct {
	*scriptWatcher
	bucket map[string]kvcore.Entry
}

var _ kvcore.KeyVersionLister = versionedScript{}

func (s versionedScript) Entry(_ context.Context, key string) (kvcore.Entry, error) {
	if e, ok := s.bucket[key]; ok {
		return e, nil
	}
	return kvcore.Entry{}, kvcore.ErrNotFound
}

func (s versionedScript) Keys(ctx context.Context, prefix string) ([]string, error) {
	kvs, _ := s.KeyVersions(ctx, prefix)
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	return keys, nil
}

func (s versionedScript) KeyVersions(_ context.Context, prefix string) ([]kvcore.KeyVersion, error) {
	var kvs []kvcore.KeyVersion
	for k, e := range s.bucket {
		if strings.HasPrefix(k, prefix) {
			kvs = append(kvs, kvcore.KeyVersion{Key: k, Version: e.Version, Size: len(e.Value)})
		}
	}
	slices.SortFunc(kvs, func(a, b kvcore.KeyVersion) int { return strings.Compare(a.Key, b.Key) })
	return kvs, nil
}

// reusedRevision is a fold at revision 2 whose key b the bucket holds at
// that revision with another value of the same size: the server's store
// went back in time to before revision 2, and a new record of b took it.
// The bucket's new records 3 to 7 (c to g) come after.
type reusedRevision struct {
	fold   *memFold
	bucket map[string]kvcore.Entry
	// news are the records 3 to 7; full is the bucket's state, as a sync
	// delivers it.
	news, full []kvcore.Event
}

func newReusedRevision() reusedRevision {
	entry := func(k, v string, rev uint64) kvcore.Entry {
		return kvcore.Entry{Key: k, Value: []byte(v), Version: kvcore.RevisionVersion(rev)}
	}
	r := reusedRevision{fold: newMemFold()}
	r.fold.entries["a"], r.fold.entries["b"] = entry("a", "v1", 1), entry("b", "v2", 2)
	r.fold.cursor = kvcore.RevisionCursor(2)
	r.bucket = map[string]kvcore.Entry{"a": entry("a", "v1", 1), "b": entry("b", "w2", 2)}
	for i, k := range []string{"c", "d", "e", "f", "g"} {
		r.bucket[k] = entry(k, "v3", uint64(3+i))
		r.news = append(r.news, put(k, "v3", uint64(3+i)))
	}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		rev, _ := r.bucket[k].Version.Revision()
		r.full = append(r.full, put(k, string(r.bucket[k].Value), rev))
	}
	return r
}

// failAfterNews is a session that delivers the records 3 to 7 and fails
// once the fold has applied them, before the loop reconciles.
func (r reusedRevision) failAfterNews() session {
	applied := make(chan struct{})
	go func() {
		for r.fold.Cursor() != kvcore.RevisionCursor(7) {
			time.Sleep(time.Millisecond)
		}
		close(applied)
	}()
	return session{events: r.news, ended: true, endErr: errInjected, endAfter: applied}
}

// resyncs runs a loop on w until its third session caught up, and checks
// that the sessions resumed from froms, then resynced, and that the fold
// ends equal to the bucket.
func (r reusedRevision) resyncs(t *testing.T, w *scriptWatcher, cfg kvcore.AppliedConfig, froms ...kvcore.Cursor) {
	t.Helper()
	var mu sync.Mutex
	synced := false
	cfg.OnProgress = func(p kvcore.Progress) { mu.Lock(); synced = p.Synced && p.Err == nil; mu.Unlock() }
	stop := loop(t, versionedScript{w, r.bucket}, r.fold, cfg, func(context.Context, kvcore.Batch) error { return nil })
	waitFor(t, "the sessions to catch up", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(w.resumedFrom()) == len(froms)+1 && synced
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := w.resumedFrom(), append(froms, kvcore.Cursor{}); !slices.Equal(got, want) {
		t.Errorf("sessions resumed from %v, want %v and a resync", got, froms)
	}
	if got, want := r.fold.values(), []string{"a=v1", "b=w2", "c=v3", "d=v3", "e=v3", "f=v3", "g=v3"}; !slices.Equal(got, want) {
		t.Errorf("fold = %v, want the bucket's %v", got, want)
	}
}

// restartResyncs starts a loop given unreconciled, which resumes at 7,
// and checks that it resyncs (see resyncs).
func (r reusedRevision) restartResyncs(t *testing.T, unreconciled kvcore.Cursor) {
	t.Helper()
	w := &scriptWatcher{sessions: []session{
		{events: []kvcore.Event{synced}},
		{events: append(r.full, synced)},
	}}
	r.resyncs(t, w, kvcore.AppliedConfig{Unreconciled: unreconciled}, kvcore.RevisionCursor(7))
}

// persisted runs a loop through sessions until it opened the n-th, stops
// it, and returns what it persisted through OnUnreconciled, in order.
func (r reusedRevision) persisted(t *testing.T, n int, sessions ...session) []kvcore.Cursor {
	t.Helper()
	var mu sync.Mutex
	var saved []kvcore.Cursor
	w := &scriptWatcher{sessions: sessions}
	stop := loop(t, versionedScript{w, r.bucket}, r.fold, kvcore.AppliedConfig{
		OnUnreconciled: func(_ context.Context, c kvcore.Cursor) error {
			mu.Lock()
			defer mu.Unlock()
			saved = append(saved, c)
			return nil
		},
	}, func(context.Context, kvcore.Batch) error { return nil })
	waitFor(t, fmt.Sprintf("session %d to open", n), func() bool { return len(w.resumedFrom()) >= n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(saved)
}

// A server's store goes back in time to before b's revision 2, and a new
// record of b with a value of the same size takes that revision. A session
// resumed at 2 delivers the new records 3 to 7 and fails before it
// reconciles; the next session resumes at 7, where the fold's latest keys
// all agree with the bucket. Its reconciliation reads back the latest keys
// up to 2 as well, where the failed session resumed, finds b's value
// changed at its revision, and the loop resyncs. Checking only up to 7 (as
// before) kept b's lost value for good (the simulator's seed 240666).
func TestAReconciliationChecksWhatAFailedSessionLeftUnchecked(t *testing.T) {
	r := newReusedRevision()
	w := &scriptWatcher{sessions: []session{
		r.failAfterNews(),
		{events: []kvcore.Event{synced}},
		{events: append(r.full, synced)},
	}}
	r.resyncs(t, w, kvcore.AppliedConfig{}, kvcore.RevisionCursor(2), kvcore.RevisionCursor(7))
}

// The same across a restart: the loop persists where the failed session
// resumed (OnUnreconciled), and the next loop, given it (Unreconciled),
// reads back the fold's latest keys up to there. Without it, the
// reconciliation after the restart checked only up to 7.
func TestALoopStartedAfterAnUnreconciledSessionChecksWhatItLeft(t *testing.T) {
	r := newReusedRevision()
	saved := r.persisted(t, 2, r.failAfterNews())
	if want := []kvcore.Cursor{kvcore.RevisionCursor(2)}; !slices.Equal(saved, want) {
		t.Fatalf("OnUnreconciled persisted %v, want %v: the second session resumed unreconciled too", saved, want)
	}
	r.restartResyncs(t, saved[0])
}

// A resync persists none only once it committed: the session after the
// one that found b's value changed at its revision (and asked for the
// resync) fails to attach, and a loop started with what was persisted
// still finds it. Persisting none at the resync's start left b's lost
// value for good after a restart (review finding).
func TestAResyncForgetsTheUnreconciledSessionOnlyOnceCommitted(t *testing.T) {
	r := newReusedRevision()
	// The resync's attach fails, and is tried again (the fourth session).
	saved := r.persisted(t, 4, r.failAfterNews(), session{events: []kvcore.Event{synced}}, session{openErr: errInjected})
	if want := []kvcore.Cursor{kvcore.RevisionCursor(2)}; !slices.Equal(saved, want) {
		t.Fatalf("OnUnreconciled persisted %v, want %v until a resync commits", saved, want)
	}
	r.restartResyncs(t, saved[0])
}

// Cursors persist as hex text, none as "".
func TestCursorText(t *testing.T) {
	for _, c := range []kvcore.Cursor{{}, kvcore.RevisionCursor(7)} {
		b, err := c.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got kvcore.Cursor
		if err := got.UnmarshalText(b); err != nil || got != c {
			t.Errorf("%v: text %q decodes to %v, %v", c, b, got, err)
		}
	}
	for _, bad := range []string{"zz", "0102030405060708090a0b"} {
		var c kvcore.Cursor
		if err := c.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("cursor text %q decoded to %v, want an error", bad, c)
		}
	}
}
