package pebblefold

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/internal/foldtest"
)

func TestConformanceBulk(t *testing.T) {
	b := backend()
	b.Open = func(loc string) (kvcore.Fold, error) { return Open(loc, Options{Bulk: true}) }
	b.Import = func(dir, loc string) (kvcore.Fold, error) { return Import(dir, loc, Options{Bulk: true}) }
	foldtest.Run(t, b)
}

// bulkChunk is n puts of keys k<from>.. with values of size bytes.
func bulkChunk(from, n, size int, rev uint64) []kvcore.Update {
	us := make([]kvcore.Update, 0, n)
	for i := from; i < from+n; i++ {
		us = append(us, putU(fmt.Sprintf("k%06d", i), strings.Repeat(string(rune('a'+i%26)), size), rev))
	}
	return us
}

// With Bulk, updates applied under an unchanged cursor (a state sync's
// chunks) are durable once the Apply that moves the cursor returns: a
// power cut right after it finds every one of them, whether they were
// written as ingested tables (a large buffer) or through a batch (a small
// one). Before that, a power cut finds the fold at the old cursor.
// BulkBytes of 1.5 MB makes buffers of 4 MB fill up and be written while
// the next fills.
func TestBulkDurableAtCheckpoint(t *testing.T) {
	for _, tc := range []struct{ size, bulkBytes int }{ // 4,000 keys: 40 kB (batch), 4 MB (ingested)
		{10, 0}, {1000, 0}, {10, 10_000}, {1000, 1_500_000},
	} {
		size := tc.size
		t.Run(fmt.Sprintf("values of %d bytes, BulkBytes %d", size, tc.bulkBytes), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			f, err := Open("fold", Options{FS: mem, Bulk: true, BulkBytes: tc.bulkBytes})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			apply(t, f, 1, putU("old", "o", 1))
			var all []kvcore.Update
			for i := range 4 {
				chunk := bulkChunk(i*1000, 1000, size, uint64(2+i))
				if err := f.Apply(context.Background(), chunk, kvcore.RevisionCursor(1)); err != nil {
					t.Fatal(err)
				}
				all = append(all, chunk...)
			}
			clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
			g, err := Open("fold", Options{FS: clone})
			if err != nil {
				t.Fatal(err)
			}
			if c, _ := g.Cursor().Revision(); c != 1 {
				t.Fatalf("before the checkpoint a power cut finds the fold at cursor %d, want 1", c)
			}
			g.Close()

			apply(t, f, 5) // the checkpoint: the cursor moves past the chunks
			clone = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
			g, err = Open("fold", Options{FS: clone})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if c, _ := g.Cursor().Revision(); c != 5 {
				t.Fatalf("after the checkpoint a power cut finds the fold at cursor %d, want 5", c)
			}
			want := []string{"old=o"}
			for _, u := range all {
				want = append(want, u.Key+"="+string(u.Value))
			}
			slices.Sort(want)
			if got := foldtest.Dump(t, g, ""); !slices.Equal(got, want) {
				t.Fatalf("after the checkpoint and a power cut the fold holds %d entries, want %d", len(got), len(want))
			}
		})
	}
}

// Reads see buffered updates at once.
func TestBulkReadsSeeBufferedUpdates(t *testing.T) {
	f, err := Open("fold", Options{FS: vfs.NewMem(), Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Apply(context.Background(), bulkChunk(0, 3, 10, 1), kvcore.Cursor{}); err != nil {
		t.Fatal(err)
	}
	if e, err := f.Get("k000002"); err != nil || len(e.Value) != 10 {
		t.Fatalf("Get of a buffered update: %v, %v", e, err)
	}
	if err := f.Apply(context.Background(), bulkChunk(3, 3, 10, 2), kvcore.Cursor{}); err != nil {
		t.Fatal(err)
	}
	if got := foldtest.Dump(t, f, ""); len(got) != 6 {
		t.Fatalf("Range over buffered updates: %q", got)
	}
}

// Close makes buffered updates durable, as a checkpoint does: those of a
// small buffer, and those of runs, spilled or spilling, and a buffer.
func TestBulkDurableAtClose(t *testing.T) {
	for _, tc := range []struct{ n, size, bulkBytes int }{{10, 10, 0}, {4000, 1000, 1_500_000}} {
		t.Run(fmt.Sprintf("%d values of %d bytes", tc.n, tc.size), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			f, err := Open("fold", Options{FS: mem, Bulk: true, BulkBytes: tc.bulkBytes})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := 0; i < tc.n; i += 1000 {
				chunk := bulkChunk(i, min(1000, tc.n-i), tc.size, 1)
				if err := f.Apply(context.Background(), chunk, kvcore.Cursor{}); err != nil {
					t.Fatal(err)
				}
				for _, u := range chunk {
					want = append(want, u.Key+"="+string(u.Value))
				}
			}
			if tc.bulkBytes > 0 && len(f.runs)+len(f.sealed) == 0 {
				t.Fatal("nothing was spilled: the fixture does not test runs")
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			g, err := Open("fold", Options{FS: mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if got := foldtest.Dump(t, g, ""); !slices.Equal(got, want) {
				t.Fatalf("after Close and a power cut the fold holds %d entries, want %d (or values differ)", len(got), len(want))
			}
		})
	}
}

// Buffered updates of one key take effect in the order applied, across
// Applies and buffers, over what the fold held before, whether a buffer is
// ingested or written as a batch.
func TestBulkLastUpdateOfAKeyWins(t *testing.T) {
	for _, tc := range []struct{ size, bulkBytes int }{{10, 0}, {4000, 0}, {10, 1000}, {14000, 1 << 20}} {
		size := tc.size
		t.Run(fmt.Sprintf("values of %d bytes, BulkBytes %d", size, tc.bulkBytes), func(t *testing.T) {
			f, err := Open("fold", Options{FS: vfs.NewMem(), Bulk: true, BulkBytes: tc.bulkBytes})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rng := rand.New(rand.NewPCG(9, 10))
			want := map[string]string{}
			rev := uint64(0)
			step := func(cursor kvcore.Cursor) {
				var batch []kvcore.Update
				for range 100 {
					rev++
					k := fmt.Sprintf("k%d", rng.IntN(40))
					if rng.IntN(4) == 0 {
						batch = append(batch, kvcore.Update{Op: kvcore.OpDelete, Key: k, Version: kvcore.RevisionVersion(rev)})
						delete(want, k)
						continue
					}
					v := fmt.Sprint(rev) + strings.Repeat("v", size)
					batch = append(batch, putU(k, v, rev))
					want[k] = v
				}
				if err := f.Apply(context.Background(), batch, cursor); err != nil {
					t.Fatal(err)
				}
			}
			for round := range 3 {
				for range 5 {
					step(f.Cursor()) // buffered
				}
				step(kvcore.RevisionCursor(uint64(round + 1))) // written out, then the cursor
			}
			got := map[string]string{}
			for _, line := range foldtest.Dump(t, f, "") {
				k, v, _ := strings.Cut(line, "=")
				got[k] = v
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("fold holds %d keys, want %d; or values differ", len(got), len(want))
			}
		})
	}
}

// Tables a crash left in the ingest directory are removed on Open.
func TestOpenRemovesTablesNotIngested(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fold")
	mem := vfs.NewMem()
	f, err := Open(dir, Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := mem.MkdirAll(mem.PathJoin(dir, ingestDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeMem(mem, mem.PathJoin(dir, ingestDir, "000000.sst"), []byte("torn")); err != nil {
		t.Fatal(err)
	}
	f, err = Open(dir, Options{FS: mem, Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := mem.Stat(mem.PathJoin(dir, ingestDir)); err == nil {
		t.Fatalf("%s survived Open", ingestDir)
	}
}

// linkHookFS calls linking before every hard link Pebble makes (ingesting
// a table links it into the store).
type linkHookFS struct {
	vfs.FS
	linking func()
}

func (fs *linkHookFS) Link(oldname, newname string) error {
	fs.linking()
	return fs.FS.Link(oldname, newname)
}

// A merge of runs takes effect all at once: a power cut as it links each
// of its tables into Pebble finds the fold as before it, and one after the
// checkpoint finds every buffered update; each is the fold of a prefix of
// what was applied, as the fold contract requires. Tables ingested part by
// part as the merge made them would leave key ranges updated beside
// others not.
func TestBulkMergeTakesEffectAtOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // a merge in two key ranges
	mem := vfs.NewCrashableMem()
	var clones []*vfs.MemFS
	fs := &linkHookFS{FS: mem, linking: func() {
		clones = append(clones, mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0}))
	}}
	f, err := Open("fold", Options{FS: fs, Bulk: true, BulkBytes: 600_000})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const n = 20_000
	newValue := strings.Repeat("n", 100)
	apply(t, f, 1, bulkChunk(0, n, 5, 1)...) // the old values
	// The new values, in an order unrelated to the keys'.
	order := rand.New(rand.NewPCG(3, 4)).Perm(n)
	for i := 0; i < n; i += 1000 {
		chunk := make([]kvcore.Update, 0, 1000)
		for _, k := range order[i : i+1000] {
			chunk = append(chunk, putU(fmt.Sprintf("k%06d", k), newValue, 2))
		}
		if err := f.Apply(context.Background(), chunk, kvcore.RevisionCursor(1)); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	err = f.waitSealed(0)
	runs, bounds := len(f.runs), f.splitKeys()
	f.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if runs < 2 || len(bounds) == 0 {
		t.Fatalf("the fixture spilled %d runs, merged in %d key ranges; want several of each", runs, len(bounds)+1)
	}
	apply(t, f, 3) // the checkpoint merges the runs
	if len(clones) < 2 {
		t.Fatalf("the merge linked %d tables, want several", len(clones))
	}
	clones = append(clones, mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0}))
	for c, clone := range clones {
		g, err := Open("fold", Options{FS: clone})
		if err != nil {
			t.Fatalf("crash state %d: %v", c, err)
		}
		updated := map[int]bool{}
		for _, kv := range foldtest.Dump(t, g, "") {
			if strings.HasSuffix(kv, "="+newValue) {
				var k int
				fmt.Sscanf(kv, "k%06d=", &k)
				updated[k] = true
			}
		}
		g.Close()
		if c == len(clones)-1 && len(updated) != n {
			t.Fatalf("after the checkpoint a power cut finds %d of the %d new values", len(updated), n)
		}
		for _, k := range order[:len(updated)] {
			if !updated[k] {
				t.Fatalf("crash state %d holds %d of the %d new values, not the first %d applied: the merge took effect in pieces", c, len(updated), n, len(updated))
			}
		}
	}
}
