package transport

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

func TestLeaseOneWinnerAmongConcurrentAcquirers(t *testing.T) {
	r := newRig(t)
	var wg sync.WaitGroup
	guards := make([]*LeaseGuard, 8)
	errs := make([]error, 8)
	for i := range guards {
		wg.Go(func() {
			l := NewLease(r.kv, "artifacts/k.lease", fmt.Sprintf("node-%d", i), nil)
			guards[i], errs[i] = l.TryAcquire(testCtx(t), time.Minute)
		})
	}
	wg.Wait()
	won := 0
	for i, g := range guards {
		if errs[i] != nil {
			t.Errorf("acquirer %d: %v", i, errs[i])
		}
		if g != nil {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d acquirers won the lease, want exactly 1", won)
	}
}

func TestLeaseHeldBlocksTheNextRound(t *testing.T) {
	r := newRig(t)
	a := NewLease(r.kv, "L", "a", nil)
	if g, err := a.TryAcquire(testCtx(t), time.Minute); err != nil || g == nil {
		t.Fatalf("first acquire: %v, %v", g, err)
	}
	b := NewLease(r.kv, "L", "b", nil)
	if g, err := b.TryAcquire(testCtx(t), time.Minute); err != nil || g != nil {
		t.Fatalf("acquire of a held lease: %v, %v; want nil, nil", g, err)
	}
	if rec, err := b.Current(testCtx(t)); err != nil || rec.HolderID != "a" {
		t.Errorf("current: %+v, %v", rec, err)
	}
}

func TestLeaseExpiryAllowsTakeover(t *testing.T) {
	r := newRig(t)
	start := time.Unix(1718000000, 0)
	a := NewLease(r.kv, "L", "a", nil)
	a.now = func() time.Time { return start }
	ga, err := a.TryAcquire(testCtx(t), 300*time.Second)
	if err != nil || ga == nil {
		t.Fatalf("first acquire: %v, %v", ga, err)
	}
	if rec := ga.Record(); rec.AcquiredAtUnix != 1718000000 || rec.ExpiresAtUnix != 1718000300 {
		t.Errorf("record %+v", rec)
	}
	b := NewLease(r.kv, "L", "b", nil)
	b.now = func() time.Time { return start.Add(299 * time.Second) }
	if g, _ := b.TryAcquire(testCtx(t), 300*time.Second); g != nil {
		t.Fatal("took over a lease before its expiry")
	}
	b.now = func() time.Time { return start.Add(300 * time.Second) }
	gb, err := b.TryAcquire(testCtx(t), 300*time.Second)
	if err != nil || gb == nil {
		t.Fatalf("takeover after expiry: %v, %v", gb, err)
	}
	// The overrun holder's completion is refused by the CAS, without error.
	if err := ga.Complete(testCtx(t), kvcore.RevisionCursor(1)); err != nil {
		t.Errorf("overrun completion: %v", err)
	}
	if rec, err := b.Current(testCtx(t)); err != nil || rec.HolderID != "b" || rec.CompletedCursorHex != "" {
		t.Errorf("current after takeover: %+v, %v", rec, err)
	}
}

func TestLeaseCompletePublishesTheOutcome(t *testing.T) {
	r := newRig(t)
	a := NewLease(r.kv, "L", "node-a", nil)
	g, err := a.TryAcquire(testCtx(t), time.Minute)
	if err != nil || g == nil {
		t.Fatal(g, err)
	}
	if err := g.Complete(testCtx(t), kvcore.RevisionCursor(42)); err != nil {
		t.Fatal(err)
	}
	rec, err := a.Current(testCtx(t))
	if err != nil || rec.CompletedCursorHex != "000000000000002a" || rec.CompletedAtUnix == nil || rec.ExpiresAtUnix != g.Record().ExpiresAtUnix {
		t.Fatalf("current after complete: %+v, %v", rec, err)
	}
	// A completed lease still holds the round until its expiry.
	if g, _ := NewLease(r.kv, "L", "b", nil).TryAcquire(testCtx(t), time.Minute); g != nil {
		t.Error("a completed, unexpired lease was taken")
	}
}

func TestLeaseAbandonLetsTheNextRoundWinAtOnce(t *testing.T) {
	r := newRig(t)
	g, err := NewLease(r.kv, "L", "a", nil).TryAcquire(testCtx(t), time.Hour)
	if err != nil || g == nil {
		t.Fatal(g, err)
	}
	g.Abandon(testCtx(t))
	b := NewLease(r.kv, "L", "b", nil)
	if rec, err := b.Current(testCtx(t)); err != nil || rec != nil {
		t.Errorf("current after abandon: %+v, %v; want none", rec, err)
	}
	if gb, err := b.TryAcquire(testCtx(t), time.Hour); err != nil || gb == nil {
		t.Fatalf("acquire after abandon: %v, %v", gb, err)
	}
}
