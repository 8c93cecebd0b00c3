package pebblefold

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
	"github.com/slipstreamkv/slipstream/snapshot/internal/foldtest"
)

func backend() foldtest.Backend {
	return foldtest.Backend{
		Name:    ArtifactBackend,
		NewLoc:  func(t testing.TB) string { return filepath.Join(t.TempDir(), "fold") },
		Open:    func(loc string) (kvcore.Fold, error) { return Open(loc, Options{}) },
		Import:  func(dir, loc string) (kvcore.Fold, error) { return Import(dir, loc, Options{}) },
		Crashes: walTruncations,
	}
}

func TestConformance(t *testing.T) { foldtest.Run(t, backend()) }

// walTruncations enumerates every torn write of the fold's write-ahead log:
// for each byte offset of the newest WAL, a copy of the closed database
// (in memory) whose WAL ends there. Pebble keeps a small fold entirely in
// its memtable and WAL, so every Apply of the fixture is in that log.
func walTruncations(t *testing.T, loc string) iter.Seq[foldtest.Crash] {
	ents, err := os.ReadDir(loc)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var wal string
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(loc, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
		if strings.HasSuffix(e.Name(), ".log") && e.Name() > wal {
			wal = e.Name()
		}
	}
	if wal == "" || len(files[wal]) == 0 {
		t.Fatalf("no write-ahead log with data in %s", loc)
	}
	full := files[wal]
	scratch := t.TempDir()
	return func(yield func(foldtest.Crash) bool) {
		for n := 0; n <= len(full); n++ {
			c := foldtest.Crash{
				Name: fmt.Sprintf("WAL %s torn at byte %d of %d", wal, n, len(full)),
				Open: func() (kvcore.Fold, error) {
					dir := filepath.Join(scratch, fmt.Sprintf("torn-%d", n))
					if err := os.Mkdir(dir, 0o755); err != nil {
						return nil, err
					}
					for name, b := range files {
						if name == wal {
							b = b[:n]
						}
						if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
							return nil, err
						}
					}
					return Open(dir, Options{NoSync: true})
				},
			}
			if !yield(c) {
				return
			}
		}
	}
}

func writeMem(fs vfs.FS, name string, b []byte) error {
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Close()
}

func apply(t testing.TB, f kvcore.Fold, rev uint64, us ...kvcore.Update) {
	t.Helper()
	if err := f.Apply(context.Background(), us, kvcore.RevisionCursor(rev)); err != nil {
		t.Fatal(err)
	}
}

func putU(k, v string, rev uint64) kvcore.Update {
	return kvcore.Update{Op: kvcore.OpPut, Key: k, Value: []byte(v), Version: kvcore.RevisionVersion(rev)}
}

// With sync on, every Apply that returned survives a power cut: a crash
// clone holding only synced data is at the last applied cursor. With sync
// off, a crash clone keeping any share of the unsynced writes is at some
// earlier cursor, with exactly that cursor's data.
func TestPowerLoss(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoSync=%v", noSync), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			f, err := Open("fold", Options{FS: mem, NoSync: noSync})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			for rev := uint64(1); rev <= 12; rev++ {
				apply(t, f, rev, putU(fmt.Sprintf("k%02d", rev), fmt.Sprintf("v%d", rev), rev), putU("last", fmt.Sprint(rev), rev))
				for _, pct := range []int{0, 50, 100} {
					clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rng})
					g, err := Open("fold", Options{FS: clone})
					if err != nil {
						t.Fatalf("rev %d, %d%% unsynced kept: %v", rev, pct, err)
					}
					c, _ := g.Cursor().Revision()
					if !noSync && c != rev {
						t.Fatalf("rev %d: a synced fold came back at cursor %d", rev, c)
					}
					got := foldtest.Dump(t, g, "")
					want := []string{}
					for r := uint64(1); r <= c; r++ {
						want = append(want, fmt.Sprintf("k%02d=v%d", r, r))
					}
					if c > 0 {
						want = append(want, fmt.Sprintf("last=%d", c))
					}
					if !slices.Equal(got, want) {
						t.Fatalf("rev %d, %d%%: cursor %d with %q", rev, pct, c, got)
					}
					g.Close()
				}
			}
		})
	}
}

// §11.D 63/64 open_rejects_corrupted_cursor.
func TestOpenRejectsCorruptedCursor(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fold")
	db, err := pebble.Open(dir, &pebble.Options{Logger: newSlogLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(cursorKey, make([]byte, 11), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, snapshot.ErrInvalidFormat) {
		t.Fatalf("err = %v", err)
	}
}

// §11.D no_sync_tail_is_consistent_and_idempotent and sync_mode_round_trips.
func TestSyncModesRoundTrip(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "fold")
		f, err := Open(dir, Options{NoSync: noSync})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range slices.Collect(slices.Chunk(foldtest.Stream, 3)) {
			apply(t, f, func() uint64 { r, _ := c[len(c)-1].Version.Revision(); return r }(), c...)
		}
		f.Close()
		f, err = Open(dir, Options{NoSync: noSync})
		if err != nil {
			t.Fatal(err)
		}
		apply(t, f, 7, foldtest.Stream[5:]...) // folding the tail again changes nothing
		if err := f.Settle(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := foldtest.Dump(t, f, ""); !slices.Equal(got, foldtest.Expected) || f.Cursor() != kvcore.RevisionCursor(7) {
			t.Fatalf("NoSync=%v: %q at %v", noSync, got, f.Cursor())
		}
		f.Close()
	}
}

// stored is the value Pebble holds for u's key once u is applied: the
// crate's ver_len u8 | version | value.
func stored(t *testing.T, u kvcore.Update) []byte {
	f, err := Open("fold", Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	apply(t, f, 1, u)
	raw, closer, err := f.db.Get(dataKey(nil, u.Key))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	return slices.Clone(raw)
}

func TestCodec(t *testing.T) {
	v, _ := kvcore.VersionFromBytes([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	raw := stored(t, kvcore.Update{Op: kvcore.OpPut, Key: "k", Value: []byte("payload"), Version: v})
	if want := append(append([]byte{10}, v.Bytes()...), "payload"...); !bytes.Equal(raw, want) {
		t.Fatalf("stored %x, want %x", raw, want)
	}
	if e, err := decodeEntry("k", raw); err != nil || string(e.Value) != "payload" || e.Version != v {
		t.Fatalf("%+v %v", e, err)
	}
	raw = stored(t, putU("k", "", 7))
	if e, err := decodeEntry("k", raw); err != nil || len(e.Value) != 0 || e.Version != kvcore.RevisionVersion(7) {
		t.Fatalf("%+v %v", e, err)
	}
	for _, bad := range [][]byte{{}, {5, 0xaa, 0xbb}, append([]byte{11}, make([]byte, 11)...)} {
		if _, err := decodeEntry("k", bad); !errors.Is(err, snapshot.ErrInvalidFormat) {
			t.Fatalf("decode %x: %v", bad, err)
		}
	}
	lo, hi := prefixBounds("a\xff")
	if string(lo) != "da\xff" || string(hi) != "db" {
		t.Fatalf("bounds %q %q", lo, hi)
	}
}

func TestReaderAfterClose(t *testing.T) {
	f, err := Open(filepath.Join(t.TempDir(), "fold"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := f.Reader()
	f.Close()
	if _, err := r.Get("a"); !errors.Is(err, snapshot.ErrClosed) {
		t.Fatal(err)
	}
	if err := r.Range(context.Background(), "", "", func(kvcore.Entry) error { return nil }); !errors.Is(err, snapshot.ErrClosed) {
		t.Fatal(err)
	}
}

var _ io.Closer = (*Fold)(nil)

// Apply writes a batch in key order; updates of one key must still take
// effect in batch order, the last one winning.
func TestApplyLastUpdateOfAKeyWins(t *testing.T) {
	f, err := Open("fold", Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	want := map[string]string{}
	var batch []kvcore.Update
	for i := range 500 {
		k := fmt.Sprintf("k%d", rng.IntN(6))
		if rng.IntN(4) == 0 {
			batch = append(batch, kvcore.Update{Op: kvcore.OpDelete, Key: k, Version: kvcore.RevisionVersion(uint64(i + 1))})
			delete(want, k)
			continue
		}
		v := fmt.Sprint(i)
		batch = append(batch, putU(k, v, uint64(i+1)))
		want[k] = v
	}
	apply(t, f, 500, batch...)
	got := map[string]string{}
	for _, line := range foldtest.Dump(t, f, "") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fold holds %v, want %v", got, want)
	}
}

// Sync makes durable what Applies under NoSync committed, and what Bulk
// buffered: a power cut before it loses them, one after it does not.
func TestSyncMakesAppliesDurable(t *testing.T) {
	for _, opts := range []Options{{NoSync: true}, {NoSync: true, Bulk: true}} {
		t.Run(fmt.Sprintf("bulk=%v", opts.Bulk), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			opts.FS = mem
			f, err := Open("fold", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Apply(context.Background(), bulkChunk(0, 10, 10, 1), kvcore.Cursor{}); err != nil {
				t.Fatal(err)
			}
			entriesAfterPowerCut := func() int {
				g, err := Open("fold", Options{FS: mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})})
				if err != nil {
					t.Fatal(err)
				}
				defer g.Close()
				return len(foldtest.Dump(t, g, ""))
			}
			if n := entriesAfterPowerCut(); n != 0 {
				t.Fatalf("before Sync, a power cut left %d entries, want 0 (nothing synced yet)", n)
			}
			if err := f.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := entriesAfterPowerCut(); n != 10 {
				t.Fatalf("after Sync, a power cut left %d entries, want 10", n)
			}
		})
	}
}

// TestOpenReadOnlyWritesNothing: a read-only open sees what the log holds
// (applies not flushed yet included), changes no file below the fold's
// directory, refuses Apply, and is refused while the fold is open.
func TestOpenReadOnlyWritesNothing(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, f, 1, putU("a", "1", 1))
	apply(t, f, 2, putU("a", "2", 2))
	if _, err := OpenReadOnly(dir, Options{}); err == nil {
		t.Fatal("a read-only open beside an open fold was not refused")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	files := func() map[string]string {
		m := map[string]string{}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			m[e.Name()] = string(b)
		}
		return m
	}
	before := files()
	ro, err := OpenReadOnly(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rev, _ := ro.Cursor().Revision(); rev != 2 {
		t.Errorf("cursor at %d, want 2", rev)
	}
	if e, err := ro.Get("a"); err != nil || string(e.Value) != "2" {
		t.Errorf("a = %q, %v", e.Value, err)
	}
	if err := ro.Apply(context.Background(), []kvcore.Update{putU("b", "1", 3)}, kvcore.RevisionCursor(3)); err == nil {
		t.Error("Apply on a read-only fold succeeded")
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if after := files(); !maps.Equal(before, after) {
		t.Errorf("a read-only open changed the directory:\nbefore %v\nafter  %v", slices.Collect(maps.Keys(before)), slices.Collect(maps.Keys(after)))
	}
}
