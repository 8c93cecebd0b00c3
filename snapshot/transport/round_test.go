package transport

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// serveExports answers export requests from fold until ctx ends, as a
// watch loop does.
func serveExports(ctx context.Context, fold kvcore.Fold) chan<- kvcore.ExportRequest {
	ch := make(chan kvcore.ExportRequest)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case req := <-ch:
				c, err := fold.Export(ctx, req.Dir)
				req.Reply <- kvcore.ExportResult{Cursor: c, Err: err}
			}
		}
	}()
	return ch
}

func TestExportRoundPublishesOncePerLease(t *testing.T) {
	r := newRig(t)
	ctx := testCtx(t)
	fold, err := snapshot.Open(filepath.Join(t.TempDir(), "fold.snap"), snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fold.Close()
	if err := fold.Apply(ctx, []kvcore.Update{{Op: kvcore.OpPut, Key: "a", Value: []byte("1"), Version: kvcore.RevisionVersion(3)}}, kvcore.RevisionCursor(3)); err != nil {
		t.Fatal(err)
	}
	exports := serveExports(ctx, fold)
	scratch := t.TempDir()
	round := func(holder string) *Round {
		t.Helper()
		res, err := RunExportRound(ctx, NewLease(r.kv, r.tr.LeaseKey("k"), holder, nil), time.Minute, exports, r.tr, "k", scratch, slog.Default())
		if err != nil {
			t.Fatalf("round of %s: %v", holder, err)
		}
		return res
	}
	res := round("a")
	if res == nil || !res.Outcome.Published || res.Pointer.Cursor != kvcore.RevisionCursor(3) {
		t.Fatalf("first round: %+v", res)
	}
	if res := round("b"); res != nil {
		t.Errorf("a second holder exported within the lease: %+v", res)
	}
	if ents, _ := os.ReadDir(scratch); len(ents) != 0 {
		t.Errorf("scratch not emptied: %v", ents)
	}
	rec, err := NewLease(r.kv, r.tr.LeaseKey("k"), "x", nil).Current(ctx)
	if err != nil || rec.HolderID != "a" || rec.CompletedCursorHex != "0000000000000003" {
		t.Errorf("lease after the round: %+v, %v", rec, err)
	}
}

func TestExportRoundAbandonsTheLeaseWhenTheExportFails(t *testing.T) {
	r := newRig(t)
	ctx := testCtx(t)
	exports := make(chan kvcore.ExportRequest)
	go func() {
		req := <-exports
		req.Reply <- kvcore.ExportResult{Err: errors.New("injected export failure")}
	}()
	_, err := RunExportRound(ctx, NewLease(r.kv, "L", "a", nil), time.Hour, exports, r.tr, "k", t.TempDir(), slog.Default())
	if err == nil {
		t.Fatal("a failed export made a successful round")
	}
	if g, err := NewLease(r.kv, "L", "b", nil).TryAcquire(ctx, time.Hour); err != nil || g == nil {
		t.Fatalf("lease not abandoned after a failed round: %v, %v", g, err)
	}
}
