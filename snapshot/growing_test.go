package snapshot

import (
	"fmt"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/internal/foldtest"
)

// A fold that grows (a first sync: new keys, no garbage) merges mem into
// base only when mem is due for it (mergeThreshold), not whenever its
// appends cross the next garbage check: each merge copies base.
func TestGrowingFoldMergesOnlyWhenMemIsDue(t *testing.T) {
	l := openLog(t, newPath(t), Options{CompactThreshold: 1})
	merges, baseLen, pendings := 0, 0, 0
	rev := uint64(0)
	for b := range 400 {
		batch := make([]kvcore.Update, 50)
		for i := range batch {
			rev++
			batch[i] = put(fmt.Sprintf("key-%06d", b*50+i), "value", rev)
		}
		apply(t, l, cur(rev), batch...)
		if l.idx.pending != nil { // a merge in the background: Range sees its changes
			if got := len(foldtest.Dump(t, l, "")); got != (b+1)*50 {
				t.Fatalf("Range during a background merge: %d keys, want %d", got, (b+1)*50)
			}
			pendings++
		}
		if n := len(l.idx.base); n != baseLen {
			merges, baseLen = merges+1, n
		}
	}
	if pendings == 0 {
		t.Fatal("no merge ran in the background")
	}
	if st := l.Stats(); st.Keys != 20000 || st.Compactions != 0 {
		t.Fatalf("stats %+v", st)
	}
	// 20,000 keys: mem is due at 4,096 keys, then at a quarter of base.
	if merges > 5 {
		t.Fatalf("%d merges while 20,000 new keys were applied", merges)
	}
}

// A fold that stops growing and changes its keys, each once (which mem
// alone does not tell), is soon no longer treated as growing: its garbage
// is checked exactly and its puts are written over their entries.
func TestGrowingFoldNoticesChanges(t *testing.T) {
	l := openLog(t, newPath(t), Options{CompactThreshold: 1})
	rev := uint64(0)
	round := func(batches int, value string) {
		for b := range batches {
			batch := make([]kvcore.Update, 50)
			for i := range batch {
				rev++
				batch[i] = put(fmt.Sprintf("key-%06d", b*50+i), value, rev)
			}
			apply(t, l, cur(rev), batch...)
		}
	}
	round(400, "value-1")
	if !l.idx.growing {
		t.Fatal("a fold of new keys is not growing")
	}
	round(20, "value-2") // 1,000 changes: a twentieth of the keys, each once
	if l.idx.growing {
		t.Fatalf("still growing after 1,000 changes of its keys (%d in mem)", len(l.idx.mem))
	}
}
