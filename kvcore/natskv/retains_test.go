package natskv

import (
	"testing"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// Retains follows the stream's first sequence: a cursor stays retained
// while every message after it is, and expires once history eviction
// drops the message right after it.
func TestRetainsFollowsTheFirstSequence(t *testing.T) {
	srv := natstest.Run(t)
	st := openStore(t, connect(t, fastOpts(srv.URL())), kvcore.StoreConfig{})
	ctx := testCtx(t)
	for _, k := range []string{"a", "b"} {
		if _, err := st.Put(ctx, k, []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	retains := func(rev uint64) bool {
		t.Helper()
		ok, err := st.Retains(ctx, kvcore.RevisionCursor(rev))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !retains(0) || !retains(2) {
		t.Fatal("a bucket with its whole history does not retain its cursors")
	}
	if _, err := st.Put(ctx, "a", []byte("2")); err != nil { // evicts revision 1 (history 1)
		t.Fatal(err)
	}
	if retains(0) || !retains(1) {
		t.Errorf("after evicting revision 1: retains(0) = %v, retains(1) = %v; want false, true", retains(0), retains(1))
	}
	if ok, err := st.Retains(ctx, kvcore.Cursor{}); err != nil || ok {
		t.Errorf("none cursor after an eviction: %v, %v; want false", ok, err)
	}
}
