package kvtest

import (
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

func (s *suite) identityCases() []testCase {
	return []testCase{
		{"BucketIdentity", s.testBucketIdentity},
	}
}

// testBucketIdentity checks a [kvcore.BucketIdentifier]: the identity is
// stable while the bucket lives and changes when it is deleted and created
// again (whose revisions start over, so only the identity tells a cursor of
// the old incarnation from one of the new), and the store reaches the new
// incarnation.
func (s *suite) testBucketIdentity(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ident, ok := st.(kvcore.BucketIdentifier)
	if !ok {
		t.Skip("the backend's stores do not implement kvcore.BucketIdentifier")
	}
	ctx := s.ctx(t)
	id, err := ident.BucketID(ctx)
	noErr(t, "bucket id", err)
	if id == "" {
		t.Fatal("BucketID is empty")
	}
	s.put(t, st, "k", "1")
	if again, err := ident.BucketID(ctx); err != nil || again != id {
		t.Fatalf("BucketID after writes = %q, %v; want %q", again, err, id)
	}
	if s.h.Recreate == nil {
		t.Skip("the harness cannot re-create buckets (Harness.Recreate is nil)")
	}
	s.h.Recreate(t, st)
	recreated, err := ident.BucketID(ctx)
	noErr(t, "bucket id after re-creating the bucket", err)
	if recreated == id {
		t.Fatalf("BucketID %q did not change when the bucket was re-created", id)
	}
	s.put(t, st, "k", "new")
	if e, err := st.Get(ctx, "k"); err != nil || string(e.Value) != "new" {
		t.Fatalf("the store does not reach the re-created bucket: get = %+v, %v", e, err)
	}
}
