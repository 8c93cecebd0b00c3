package natskv

import (
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
