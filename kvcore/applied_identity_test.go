package kvcore_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/memkv"
)

// identities records what WatchApplied asks to persist with OnBucketID.
type identities struct {
	mu  sync.Mutex
	ids []string
}

func (r *identities) persist(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
	return nil
}

func (r *identities) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ids) == 0 {
		return ""
	}
	return r.ids[len(r.ids)-1]
}

func putAll(t *testing.T, s kvcore.Store, value string, keys ...string) kvcore.Cursor {
	t.Helper()
	var c kvcore.Cursor
	for _, k := range keys {
		v, err := s.Put(t.Context(), k, []byte(value))
		if err != nil {
			t.Fatal(err)
		}
		c = kvcore.CursorAt(v)
	}
	return c
}

// storeState is a memkv store's live content as sorted key=value pairs,
// empty values included.
func storeState(t *testing.T, s kvcore.Store) []string {
	t.Helper()
	keys, err := s.Keys(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		e, err := s.Entry(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k+"="+string(e.Value))
	}
	slices.Sort(out)
	return out
}

// TestBucketRecreatedWhileStoppedResyncs folds a bucket, deletes and
// re-creates it while the loop is stopped, and restarts the loop with the
// identity it persisted: the fold must end up equal to the new bucket.
func TestBucketRecreatedWhileStoppedResyncs(t *testing.T) {
	keys := []string{"k0", "k1", "k2", "k3", "k4"}
	for _, tc := range []struct {
		name string
		// recreate fills the new incarnation of the bucket.
		recreate func(t *testing.T, s kvcore.Store)
	}{
		{"more records than the cursor", func(t *testing.T, s kvcore.Store) {
			putAll(t, s, "new", append(slices.Clone(keys), "k5", "k6", "k7")...)
		}},
		{"same keys, as many records", func(t *testing.T, s kvcore.Store) { putAll(t, s, "new", keys...) }},
		{"empty", func(*testing.T, kvcore.Store) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := memkv.New()
			s, err := conn.Store(t.Context(), kvcore.StoreConfig{Bucket: "app"})
			if err != nil {
				t.Fatal(err)
			}
			c := putAll(t, s, "old", keys...)
			f := newMemFold()
			ids := &identities{}
			r := &recorder{fold: f}
			stop := loop(t, s, f, kvcore.AppliedConfig{OnBucketID: ids.persist}, r.apply)
			waitFor(t, "the first sync", func() bool { return f.Cursor() == c && ids.last() != "" })
			stop()
			first := ids.last()

			if err := conn.DeleteBucket("app"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Store(t.Context(), kvcore.StoreConfig{Bucket: "app"}); err != nil {
				t.Fatal(err)
			}
			tc.recreate(t, s)
			want := storeState(t, s)

			r2 := &recorder{fold: f}
			stop = loop(t, s, f, kvcore.AppliedConfig{BucketID: first, OnBucketID: ids.persist}, r2.apply)
			waitFor(t, "the fold to equal the new bucket and its identity to be recorded", func() bool {
				return slices.Equal(f.values(), want) && ids.last() != first
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			b := r2.applied()
			if len(b) != 1 || !b[0].Full {
				t.Errorf("batches = %+v, want one full batch", b)
			}
			if id, _ := s.(kvcore.BucketIdentifier).BucketID(t.Context()); ids.last() != id {
				t.Errorf("recorded identity %q, want the new bucket's %q", ids.last(), id)
			}
		})
	}
}

// A fold whose cursor has no recorded identity (state written before
// identities were kept) resyncs once, then records it; a fold whose
// identity matches resumes from its cursor.
func TestBucketIdentityUpgradeAndMatch(t *testing.T) {
	conn := memkv.New()
	s, err := conn.Store(t.Context(), kvcore.StoreConfig{Bucket: "app"})
	if err != nil {
		t.Fatal(err)
	}
	c := putAll(t, s, "v", "a", "b")
	f := newMemFold()
	r := &recorder{fold: f}
	stop := loop(t, s, f, kvcore.AppliedConfig{}, r.apply) // no identity kept
	waitFor(t, "the first sync", func() bool { return f.Cursor() == c })
	stop()

	ids := &identities{}
	r = &recorder{fold: f}
	var logs logtest.Buffer
	stop = loop(t, s, f, kvcore.AppliedConfig{OnBucketID: ids.persist, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, r.apply)
	waitFor(t, "the identity to be recorded", func() bool { return ids.last() != "" })
	stop()
	if b := r.applied(); len(b) != 1 || !b[0].Full {
		t.Errorf("upgrade: batches = %+v, want one full batch (resync)", b)
	}
	// Not a warning that the bucket was replaced: it was not.
	if want := `level=INFO msg="no bucket identity was recorded with the fold's cursor (state from an older version, or a stop before it was recorded)`; !strings.Contains(logs.String(), want) || strings.Contains(logs.String(), "replaced since") {
		t.Errorf("upgrade logs lack %s, or say the bucket was replaced:\n%s", want, logs.String())
	}

	c = putAll(t, s, "w", "c")
	r = &recorder{fold: f}
	stop = loop(t, s, f, kvcore.AppliedConfig{BucketID: ids.last(), OnBucketID: ids.persist}, r.apply)
	waitFor(t, "the delta", func() bool { return f.Cursor() == c })
	stop()
	if b := r.applied(); len(b) != 1 || b[0].Full || len(b[0].Updates) != 1 {
		t.Errorf("matching identity: batches = %+v, want one incremental batch", b)
	}
	if len(ids.ids) != 1 {
		t.Errorf("identities persisted %v, want one", ids.ids)
	}
}

// A bucket deleted and re-created while the loop runs: the running watch
// fails, and the session that follows sees the new identity.
func TestBucketRecreatedWhileRunningResyncs(t *testing.T) {
	conn := memkv.New()
	s, err := conn.Store(t.Context(), kvcore.StoreConfig{Bucket: "app"})
	if err != nil {
		t.Fatal(err)
	}
	c := putAll(t, s, "old", "a", "b", "c")
	f := newMemFold()
	ids := &identities{}
	r := &recorder{fold: f}
	stop := loop(t, s, f, kvcore.AppliedConfig{OnBucketID: ids.persist}, r.apply)
	defer stop()
	waitFor(t, "the first sync", func() bool { return f.Cursor() == c && ids.last() != "" })
	first := ids.last()
	if err := conn.DeleteBucket("app"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Store(t.Context(), kvcore.StoreConfig{Bucket: "app"}); err != nil {
		t.Fatal(err)
	}
	putAll(t, s, "new", "a", "b", "c", "d")
	want := storeState(t, s)
	waitFor(t, fmt.Sprintf("the fold to become %v", want), func() bool {
		return slices.Equal(f.values(), want) && ids.last() != first
	})
}

// recreatedOnAttach is a scripted source whose bucket is deleted and
// created again right after its first watch attached: that watch delivers
// the old incarnation's state while BucketID already names the new one.
type recreatedOnAttach struct {
	*scriptWatcher
	mu      sync.Mutex
	watched bool
}

func (s *recreatedOnAttach) Watch(ctx context.Context, scope kvcore.Scope, from kvcore.Cursor) (kvcore.Watch, error) {
	wa, err := s.scriptWatcher.Watch(ctx, scope, from)
	s.mu.Lock()
	s.watched = true
	s.mu.Unlock()
	return wa, err
}

func (s *recreatedOnAttach) BucketID(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watched {
		return "app#2", nil
	}
	return "app#1", nil
}

// A re-creation between the attach and the identity read must not get the
// new identity recorded next to the old incarnation's state and cursor.
func TestBucketRecreatedRightAfterAttach(t *testing.T) {
	f := newMemFold()
	src := &recreatedOnAttach{scriptWatcher: &scriptWatcher{sessions: []session{
		{events: []kvcore.Event{put("a", "old", 7), synced}},
		{events: []kvcore.Event{put("b", "new", 1), synced}},
	}}}
	var mu sync.Mutex
	var persisted []string
	onID := func(_ context.Context, id string) error {
		mu.Lock()
		defer mu.Unlock()
		persisted = append(persisted, fmt.Sprintf("%s %v %v", id, f.values(), f.Cursor()))
		return nil
	}
	r := &recorder{fold: f}
	stop := loop(t, src, f, kvcore.AppliedConfig{OnBucketID: onID}, r.apply)
	waitFor(t, "an identity to be recorded", func() bool { mu.Lock(); defer mu.Unlock(); return len(persisted) > 0 })
	stop()
	mu.Lock()
	defer mu.Unlock()
	if want := "app#2 [b=new] rev 1"; persisted[0] != want {
		t.Errorf("recorded %q, want %q (the new incarnation's state and cursor)", persisted[0], want)
	}
}
