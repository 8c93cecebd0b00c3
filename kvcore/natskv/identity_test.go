package natskv

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// A bucket's identity survives a server restart and another store handle,
// and changes when the bucket is deleted and created again.
func TestBucketID(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	ctx := testCtx(t)
	s := openStore(t, c, kvcore.StoreConfig{})
	id, err := s.BucketID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "KV_"+s.bucket+"@") || !strings.HasSuffix(id, "Z") {
		t.Errorf("BucketID = %q, want KV_%s@<UTC creation time>", id, s.bucket)
	}
	srv.Restart()
	other, err := c.Open(ctx, s.bucket)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := other.(kvcore.BucketIdentifier).BucketID(ctx); err != nil || again != id {
		t.Fatalf("after a server restart, through another handle: BucketID = %q, %v; want %q", again, err, id)
	}

	_, js := rawJS(t, srv.URL())
	if err := js.DeleteKeyValue(ctx, s.bucket); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BucketID(ctx); !errors.Is(err, kvcore.ErrBucketNotFound) {
		t.Fatalf("BucketID of a deleted bucket: %v, want ErrBucketNotFound", err)
	}
	if _, err := natstest.CreateOrUpdateKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: s.bucket}); err != nil {
		t.Fatal(err)
	}
	if recreated, err := s.BucketID(ctx); err != nil || recreated == id {
		t.Fatalf("BucketID of the re-created bucket = %q, %v; want one other than %q", recreated, err, id)
	}
}
