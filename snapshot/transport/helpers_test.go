package transport

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
	"github.com/slipstreamkv/slipstream/snapshot"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var bucketSeq atomic.Int64

// rig is a real NATS server with an object store and a KV bucket.
type rig struct {
	conn    *natskv.Conn
	objects kvcore.Objects
	kv      kvcore.Store
	tr      *Transport
}

func newRig(t *testing.T) *rig {
	t.Helper()
	srv := natstest.Run(t)
	ctx := testCtx(t)
	c := natskv.New(natskv.Options{Servers: []string{srv.URL()}, Timeout: 5 * time.Second})
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	name := fmt.Sprintf("artifacts%d", bucketSeq.Add(1))
	objs, err := c.Objects(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := c.Store(ctx, kvcore.StoreConfig{Bucket: name})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{conn: c, objects: objs, kv: kv, tr: New(objs, kv, "artifacts")}
}

// exportAt writes an artifact of a fold holding n keys at cursor rev and
// returns its directory.
func exportAt(t *testing.T, rev uint64, n int) string {
	t.Helper()
	dir := t.TempDir()
	l, err := snapshot.Open(filepath.Join(dir, "fold.snap"), snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var ups []kvcore.Update
	for i := range n {
		ups = append(ups, kvcore.Update{Op: kvcore.OpPut, Key: fmt.Sprintf("k%d", i), Value: fmt.Appendf(nil, "v%d@%d", i, rev), Version: kvcore.RevisionVersion(uint64(i + 1))})
	}
	if err := l.Apply(testCtx(t), ups, kvcore.RevisionCursor(rev)); err != nil {
		t.Fatal(err)
	}
	art := filepath.Join(dir, "artifact")
	if _, err := l.Export(testCtx(t), art); err != nil {
		t.Fatal(err)
	}
	return art
}

// upload publishes an artifact at rev under key.
func (r *rig) upload(t *testing.T, key string, rev uint64) (PublishOutcome, *Pointer) {
	t.Helper()
	out, p, err := r.tr.Upload(testCtx(t), key, exportAt(t, rev, 3))
	if err != nil {
		t.Fatalf("upload at %d: %v", rev, err)
	}
	return out, p
}
