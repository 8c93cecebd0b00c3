package memkv

import (
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// The mark stays while nothing changes and moves with every record added
// or removed; a restored copy brings the copy's mark back, and a record of
// the same key and size written at the revision it reused moves it.
func TestBucketMark(t *testing.T) {
	ctx := t.Context()
	c := New()
	s, err := c.Store(ctx, kvcore.StoreConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	m := s.(kvcore.BucketMarker)
	mark := func() string {
		t.Helper()
		got, _, err := m.BucketMark(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	marks := map[string]string{}
	step := func(what string, change func() error) {
		t.Helper()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got := mark()
		if again := mark(); again != got {
			t.Fatalf("after %s: the mark moved without a change: %q, then %q", what, got, again)
		}
		if prev, ok := marks[got]; ok {
			t.Fatalf("after %s: mark %q, as after %s", what, got, prev)
		}
		marks[got] = what
	}
	step("nothing", func() error { return nil })
	step("a put", func() error { _, err := s.Put(ctx, "k", []byte("v1")); return err })
	restore, err := c.CopyBucket("b")
	if err != nil {
		t.Fatal(err)
	}
	step("a second put", func() error { _, err := s.Put(ctx, "k", []byte("v2")); return err })
	step("a delete", func() error { return s.Delete(ctx, "k") })
	step("a purge", func() error { return s.Purge(ctx, "k") })
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if got := mark(); marks[got] != "a put" {
		t.Fatalf("after the restore: mark %q, want the one after the put the copy holds", got)
	}
	step("a put of the same key and size at a reused revision", func() error { _, err := s.Put(ctx, "k", []byte("w2")); return err })
}
