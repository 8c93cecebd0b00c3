package memkv

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/kvtest"
)

func TestConformance(t *testing.T) {
	c := New()
	kvtest.Run(t, kvtest.Harness{
		Open: func(t testing.TB, cfg kvcore.StoreConfig) kvcore.Store {
			s, err := c.Store(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Recreate: func(t testing.TB, s kvcore.Store) {
			if err := c.DeleteBucket(s.Bucket()); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Store(t.Context(), kvcore.StoreConfig{Bucket: s.Bucket()}); err != nil {
				t.Fatal(err)
			}
		},
	})
}

func TestLifecycle(t *testing.T) {
	ctx := t.Context()
	c := New()
	if !c.Healthy() {
		t.Fatal("a new Conn is not healthy")
	}
	s, err := c.Store(ctx, kvcore.StoreConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(ctx, kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if c.Healthy() {
		t.Fatal("healthy after Close")
	}
	for range w.Events() {
	}
	if err := w.Err(); !errors.Is(err, kvcore.ErrNotConnected) || !errors.Is(err, kvcore.ErrWatchFailed) {
		t.Fatalf("watch after Close: %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, kvcore.ErrNotConnected) {
		t.Fatalf("get after Close: %v", err)
	}
	if _, err := c.Store(ctx, kvcore.StoreConfig{Bucket: "b"}); !errors.Is(err, kvcore.ErrNotConnected) {
		t.Fatalf("store after Close: %v", err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// The bucket, with its data and its first config, outlives the session.
	s, err = c.Store(ctx, kvcore.StoreConfig{Bucket: "b", History: 10})
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Get(ctx, "k")
	if err != nil || string(e.Value) != "1" {
		t.Fatalf("get after reconnecting = %+v, %v", e, err)
	}
	s.Put(ctx, "k", []byte("2"))
	s.Put(ctx, "k", []byte("3"))
	if _, err := s.Watch(ctx, kvcore.AllKeys(), kvcore.CursorAt(e.Version)); !errors.Is(err, kvcore.ErrCursorExpired) {
		t.Fatalf("history was reconciled to 10: watch from the first put = %v", err)
	}
	for _, cfg := range []kvcore.StoreConfig{{Bucket: ""}, {Bucket: "a.b"}} {
		if _, err := c.Store(ctx, cfg); !errors.Is(err, kvcore.ErrInvalidBucket) {
			t.Errorf("store %q: %v", cfg.Bucket, err)
		}
	}
	for _, cfg := range []kvcore.StoreConfig{{Bucket: "h", History: 65}, {Bucket: "h", MaxAge: -time.Second}} {
		if _, err := c.Store(ctx, cfg); !errors.Is(err, kvcore.ErrInvalidConfig) {
			t.Errorf("store %+v: %v, want ErrInvalidConfig", cfg, err)
		}
	}
	if _, err := c.Open(ctx, "h"); !errors.Is(err, kvcore.ErrBucketNotFound) {
		t.Errorf("a refused config created its bucket: %v", err)
	}
}

// Writers and watchers at once: every watch ends up with the bucket's
// state, and a watch started from any revision it saw agrees.
func TestConcurrentWritersAndWatchers(t *testing.T) {
	ctx := t.Context()
	s, err := New().Store(ctx, kvcore.StoreConfig{Bucket: "hammer", History: 3})
	if err != nil {
		t.Fatal(err)
	}
	const writers, writes, keys = 4, 300, 20
	var watches []kvcore.Watch
	for range 3 {
		w, err := s.Watch(ctx, kvcore.AllKeys(), kvcore.Cursor{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		watches = append(watches, w)
	}
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for j := range writes {
				key := fmt.Sprintf("k%02d", (i*writes+j)%keys)
				switch j % 7 {
				case 3:
					s.Delete(ctx, key)
				case 5:
					s.Purge(ctx, key)
				default:
					s.Put(ctx, key, []byte(fmt.Sprint(i, j)))
				}
			}
		})
	}
	wg.Wait()
	last, err := s.Put(ctx, "done", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := s.Scan(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, e := range entries {
		want[e.Key] = string(e.Value)
	}
	for i, w := range watches {
		got := map[string]string{}
		var prev kvcore.Version
		for ev := range w.Events() {
			if ev.Synced {
				continue
			}
			if !prev.IsUnknown() && bytes.Compare(ev.Version.Bytes(), prev.Bytes()) <= 0 {
				t.Fatalf("watch %d: %v after %v", i, ev.Version, prev)
			}
			prev = ev.Version
			if ev.IsRemoval() {
				delete(got, ev.Key)
			} else {
				got[ev.Key] = string(ev.Value)
			}
			if ev.Version == last {
				break
			}
		}
		if !maps.Equal(got, want) {
			t.Fatalf("watch %d folded to %v, bucket holds %v", i, got, want)
		}
	}
}

func TestOpenNeverCreates(t *testing.T) {
	ctx := t.Context()
	c := New()
	if _, err := c.Open(ctx, "missing"); !errors.Is(err, kvcore.ErrBucketNotFound) {
		t.Fatalf("Open(missing) = %v, want ErrBucketNotFound", err)
	}
	if _, err := c.Open(ctx, "missing"); !errors.Is(err, kvcore.ErrBucketNotFound) {
		t.Fatalf("the first Open created the bucket: %v", err)
	}
	s, err := c.Store(ctx, kvcore.StoreConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	o, err := c.Open(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := o.Get(ctx, "k"); err != nil || string(e.Value) != "v" {
		t.Fatalf("Get through Open = %v, %v", e, err)
	}
}

// DeleteBucket ends the bucket's watches; a store keeps its name and reaches
// the bucket created again, which starts over with a new identity.
func TestDeleteBucket(t *testing.T) {
	ctx := t.Context()
	c := New()
	s, err := c.Store(ctx, kvcore.StoreConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	s.Put(ctx, "k", []byte("1"))
	id, err := s.(kvcore.BucketIdentifier).BucketID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(ctx, kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := c.DeleteBucket("b"); err != nil {
		t.Fatal(err)
	}
	for range w.Events() {
	}
	if err := w.Err(); !errors.Is(err, kvcore.ErrWatchFailed) || !errors.Is(err, kvcore.ErrBucketNotFound) {
		t.Fatalf("watch of a deleted bucket: %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, kvcore.ErrBucketNotFound) {
		t.Fatalf("get on a deleted bucket: %v", err)
	}
	if _, err := s.(kvcore.BucketIdentifier).BucketID(ctx); !errors.Is(err, kvcore.ErrBucketNotFound) {
		t.Fatalf("BucketID of a deleted bucket: %v", err)
	}
	if err := c.DeleteBucket("b"); !errors.Is(err, kvcore.ErrBucketNotFound) {
		t.Fatalf("deleting a missing bucket: %v", err)
	}
	if _, err := c.Store(ctx, kvcore.StoreConfig{Bucket: "b"}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Put(ctx, "k", []byte("2")); err != nil || v != kvcore.RevisionVersion(1) {
		t.Fatalf("put on the re-created bucket = %v, %v; want revision 1", v, err)
	}
	if again, err := s.(kvcore.BucketIdentifier).BucketID(ctx); err != nil || again == id {
		t.Fatalf("BucketID of the re-created bucket = %q, %v; want one other than %q", again, err, id)
	}
}
