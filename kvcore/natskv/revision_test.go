package natskv

import (
	"errors"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

func TestLastRevision(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	s := openStore(t, c, kvcore.StoreConfig{Bucket: uniqueBucket()})
	ctx := testCtx(t)
	if rev, err := s.LastRevision(ctx); err != nil || rev != 0 {
		t.Fatalf("empty bucket: %d, %v", rev, err)
	}
	mustPut(t, s, "a", "1")
	last := mustPut(t, s, "b", "2")
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if rev, err := s.LastRevision(ctx); err != nil || rev != last+1 {
		t.Errorf("after two puts and a delete: %d, %v; want %d (the delete)", rev, err, last+1)
	}
}

func TestKeyAt(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	s := openStore(t, c, kvcore.StoreConfig{Bucket: uniqueBucket()})
	ctx := testCtx(t)
	first := mustPut(t, s, "a", "1")
	second := mustPut(t, s, "node.b", "2")
	if err := s.Delete(ctx, "node.b"); err != nil {
		t.Fatal(err)
	}
	for rev, want := range map[uint64]string{first: "a", second + 1: "node.b"} {
		if key, err := s.KeyAt(ctx, rev); err != nil || key != want {
			t.Errorf("KeyAt(%d) = %q, %v; want %q", rev, key, err, want)
		}
	}
	// History 1: the delete replaced node.b's put, and a's second put
	// replaces its first.
	mustPut(t, s, "a", "3")
	for _, rev := range []uint64{first, second, second + 100} {
		if key, err := s.KeyAt(ctx, rev); !errors.Is(err, kvcore.ErrNotFound) {
			t.Errorf("KeyAt(%d) = %q, %v; want ErrNotFound", rev, key, err)
		}
	}
}
