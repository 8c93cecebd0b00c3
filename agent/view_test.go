package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// TestFoldViewScanAddsNoAllocationPerEntry scans a fold of 1,000 keys with
// versions through the view plugins read: the entries arrive whole and in
// order, and the view allocates no more than the fold's own Range, whatever
// the number of keys (a full render of 100k keys used to allocate every
// entry's version as well).
func TestFoldViewScanAddsNoAllocationPerEntry(t *testing.T) {
	ctx := context.Background()
	fold, err := snapshot.Open(filepath.Join(t.TempDir(), "fold.snap"), snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fold.Close() })
	const n = 1000
	var puts []kvcore.Update
	for i := range n {
		puts = append(puts, kvcore.Update{Op: kvcore.OpPut, Key: fmt.Sprintf("k%04d", i), Value: []byte("v"), Version: kvcore.RevisionVersion(uint64(i + 1))})
	}
	if err := fold.Apply(ctx, puts, kvcore.RevisionCursor(n)); err != nil {
		t.Fatal(err)
	}
	view := foldView{fold: fold}
	seen := 0
	scan := func() {
		seen = 0
		err := view.Scan(ctx, "", "", func(e host.Entry) bool {
			want := kvcore.RevisionVersion(uint64(seen + 1)).Bytes()
			if e.Key != fmt.Sprintf("k%04d", seen) || e.Revision != uint64(seen+1) || string(e.Version) != string(want) {
				t.Fatalf("entry %d: %+v", seen, e)
			}
			seen++
			return true
		})
		if err != nil || seen != n {
			t.Fatalf("scanned %d entries: %v", seen, err)
		}
	}
	scan()
	viewAllocs := testing.AllocsPerRun(3, func() {
		_ = view.Scan(ctx, "", "", func(host.Entry) bool { return true })
	})
	foldAllocs := testing.AllocsPerRun(3, func() {
		_ = fold.Range(ctx, "", "", func(kvcore.Entry) error { return nil })
	})
	if viewAllocs > foldAllocs+10 {
		t.Fatalf("a scan of %d entries made %.0f allocations, the fold's Range %.0f", n, viewAllocs, foldAllocs)
	}
}
