package kvcore_test

import (
	"context"
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

// A server's store goes back in time to before b's revision 2, and a new
// record of b with a value of the same size takes that revision. A session
// resumed at 2 delivers the new records 3 to 7 and fails before it
// reconciles; the next session resumes at 7, where the fold's latest keys
// all agree with the bucket. Its reconciliation reads back the latest keys
// up to 2 as well, where the failed session resumed, finds b's value
// changed at its revision, and the loop resyncs. Checking only up to 7 (as
// before) kept b's lost value for good (the simulator's seed 240666).
func TestAReconciliationChecksWhatAFailedSessionLeftUnchecked(t *testing.T) {
	entry := func(k, v string, rev uint64) kvcore.Entry {
		return kvcore.Entry{Key: k, Value: []byte(v), Version: kvcore.RevisionVersion(rev)}
	}
	f := newMemFold()
	f.entries["a"], f.entries["b"] = entry("a", "v1", 1), entry("b", "v2", 2)
	f.cursor = kvcore.RevisionCursor(2)
	bucket := map[string]kvcore.Entry{"a": entry("a", "v1", 1), "b": entry("b", "w2", 2)}
	var news, full []kvcore.Event
	for i, k := range []string{"c", "d", "e", "f", "g"} {
		bucket[k] = entry(k, "v3", uint64(3+i))
		news = append(news, put(k, "v3", uint64(3+i)))
	}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		rev, _ := bucket[k].Version.Revision()
		full = append(full, put(k, string(bucket[k].Value), rev))
	}
	applied := make(chan struct{}) // the first session's batch is folded and applied
	go func() {
		for f.Cursor() != kvcore.RevisionCursor(7) {
			time.Sleep(time.Millisecond)
		}
		close(applied)
	}()
	w := &scriptWatcher{sessions: []session{
		{events: news, ended: true, endErr: errInjected, endAfter: applied},
		{events: []kvcore.Event{synced}},
		{events: append(full, synced)},
	}}
	var mu sync.Mutex
	synced := false
	stop := loop(t, versionedScript{w, bucket}, f, kvcore.AppliedConfig{
		OnProgress: func(p kvcore.Progress) { mu.Lock(); synced = p.Synced && p.Err == nil; mu.Unlock() },
	}, func(context.Context, kvcore.Batch) error { return nil })
	waitFor(t, "the third session to catch up", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(w.resumedFrom()) == 3 && synced
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if froms := w.resumedFrom(); froms[0] != kvcore.RevisionCursor(2) || froms[1] != kvcore.RevisionCursor(7) || !froms[2].IsNone() {
		t.Errorf("sessions resumed from %v, want 2, 7, then a resync", froms)
	}
	if got, want := f.values(), []string{"a=v1", "b=w2", "c=v3", "d=v3", "e=v3", "f=v3", "g=v3"}; !slices.Equal(got, want) {
		t.Errorf("fold = %v, want the bucket's %v", got, want)
	}
}
