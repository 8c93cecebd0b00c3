package snapshot

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/internal/foldtest"
)

func logBackend() foldtest.Backend {
	return foldtest.Backend{
		Name:   ArtifactBackend,
		NewLoc: func(t testing.TB) string { return filepath.Join(t.TempDir(), "fold.snap") },
		Open:   func(loc string) (kvcore.Fold, error) { return Open(loc, Options{}) },
		Import: func(dir, loc string) (kvcore.Fold, error) { return Import(dir, loc, Options{}) },
		Crashes: func(t *testing.T, loc string) iter.Seq[foldtest.Crash] {
			img := readFile(t, loc)
			dir := t.TempDir()
			return func(yield func(foldtest.Crash) bool) {
				for n := 0; n <= len(img); n++ {
					p := filepath.Join(dir, fmt.Sprintf("torn-%d.snap", n))
					c := foldtest.Crash{
						Name: fmt.Sprintf("log torn at byte %d of %d", n, len(img)),
						Open: func() (kvcore.Fold, error) {
							if err := os.WriteFile(p, img[:n], 0o644); err != nil {
								return nil, err
							}
							return Open(p, Options{})
						},
						// Files are created by rename with their header in
						// place, so a torn header is never a crash state;
						// load refuses it ("file too short").
						MayRefuse: n < headerLen,
					}
					if !yield(c) {
						return
					}
				}
			}
		},
	}
}

func TestLogConformance(t *testing.T) { foldtest.Run(t, logBackend()) }

func openLog(t testing.TB, p string, opts Options) *Log {
	t.Helper()
	l, err := Open(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func apply(t testing.TB, l *Log, c kvcore.Cursor, us ...kvcore.Update) {
	t.Helper()
	if err := l.Apply(context.Background(), us, c); err != nil {
		t.Fatal(err)
	}
}

// dumpLog reads the file at p without rewriting it (a Log may have it open).
func dumpLog(t testing.TB, p string) []string {
	t.Helper()
	rep, err := Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Snapshot()
	if s == nil {
		return nil
	}
	return append(kvs(s.Entries), "cursor "+s.Cursor.String())
}

func TestLogTornHeaderIsRefused(t *testing.T) {
	for n := range headerLen {
		p := writeTemp(t, header[:n])
		if _, err := Open(p, Options{}); !errors.Is(err, ErrInvalidFormat) {
			t.Fatalf("%d-byte file: err = %v", n, err)
		}
		assertFile(t, p, header[:n])
	}
}

func TestLogOpenRefusesCorruptFileUntouched(t *testing.T) {
	img := image(put("a", "1", 1), corruptCRC(encodeRec(nil, put("b", "2", 2))), cur(2))
	p := writeTemp(t, img)
	_, err := Open(p, Options{})
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Kind != KindCorrupted {
		t.Fatalf("err = %v", err)
	}
	assertFile(t, p, img)
}

// §11.D append_log_loads_legacy_writer_file.
func TestLogLoadsWriterFile(t *testing.T) {
	p := newPath(t)
	writeClosed(t, p, put("node.a", "v1", 1), put("node.b", "v2", 2), cur(2))
	l := openLog(t, p, Options{})
	if l.Cursor() != cur(2) {
		t.Fatalf("cursor %v", l.Cursor())
	}
	for k, v := range map[string]string{"node.a": "v1", "node.b": "v2"} {
		if e, err := l.Get(k); err != nil || string(e.Value) != v {
			t.Fatalf("Get(%s) = %+v, %v", k, e, err)
		}
	}
}

// §11.C torn_first_record_then_apply_is_visible_after_reopen.
func TestLogTornFirstRecordThenApply(t *testing.T) {
	p := writeTemp(t, image([]byte{0x11, 0x22, 0x33, 0x44, 0x01, 0x00}))
	l := openLog(t, p, Options{})
	apply(t, l, cur(3), put("charlie", "should-survive", 3))
	l.Close()
	l = openLog(t, p, Options{})
	if e, err := l.Get("charlie"); err != nil || string(e.Value) != "should-survive" {
		t.Fatalf("Get = %+v, %v", e, err)
	}
}

func writeThree(t testing.TB) (string, []int) {
	p := newPath(t)
	w := openW(t, p, 0)
	var offs []int
	for i, kv := range [][2]string{{"alpha", "value-alpha-xxxxxxxx"}, {"bravo", "value-bravo-yyyyyyyy"}, {"charlie", "value-charlie-zzzzzz"}} {
		w.Flush()
		offs = append(offs, len(readFile(t, p)))
		write(t, w, put(kv[0], kv[1], uint64(i+1)), cur(uint64(i+1)))
	}
	w.Close()
	return p, offs
}

// §11.C mid_file_length_bitrot_is_not_a_silent_tail.
func TestLogMidFileLengthBitrot(t *testing.T) {
	p, offs := writeThree(t)
	b := readFile(t, p)
	at := offs[1] + 5 + 2 + len("bravo")
	copy(b[at:], []byte{0xff, 0xff, 0xff, 0x7f})
	os.WriteFile(p, b, 0o644)
	if _, err := Load(p); !errors.Is(err, ErrCorrupted) {
		t.Fatalf("err = %v, want ErrCorrupted", err)
	}
	assertFile(t, p, b)
}

// §11.C trailing_zero_bytes_do_not_reject_the_prefix.
func TestLogTrailingZeroBytes(t *testing.T) {
	p, _ := writeThree(t)
	os.WriteFile(p, append(readFile(t, p), make([]byte, 8)...), 0o644)
	if s := mustLoad(t, p); len(s.Entries) != 3 || s.Cursor != cur(3) {
		t.Fatalf("%+v", s)
	}
}

// §11.C mid_file_nuls_must_not_drop_a_crc_valid_suffix.
func TestLogMidFileNULs(t *testing.T) {
	p := newPath(t)
	writeClosed(t, p, put("a", "x", 1), cur(1), put("b", "y", 2), cur(2))
	b := readFile(t, p)
	b = slices.Insert(b, 42, make([]byte, 5)...)
	os.WriteFile(p, b, 0o644)
	if _, err := Load(p); !errors.Is(err, ErrInvalidFormat) {
		t.Fatalf("err = %v, want ErrInvalidFormat", err)
	}
	assertFile(t, p, b)
}

func TestLogApplyRefusesBadUpdatesBeforeWriting(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1))
	before := readFile(t, p)
	huge := kvcore.Update{Op: kvcore.OpPut, Key: "big", Value: make([]byte, MaxValueLen+1)}
	if err := l.Apply(context.Background(), []kvcore.Update{put("b", "2", 2), huge}, cur(2)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	assertFile(t, p, before)
	if _, err := l.Get("b"); !errors.Is(err, kvcore.ErrNotFound) || l.Cursor() != cur(1) {
		t.Fatal("refused batch changed the fold")
	}
}

func TestLogWriteFailureRollsBack(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1))
	before := readFile(t, p)
	real := osFS()
	l.fs.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		n, _ := real.writeAt(f, b[:len(b)/2], off) // a short write, then failure
		return n, errors.New("injected: no space left")
	}
	if err := l.Apply(context.Background(), []kvcore.Update{put("b", "2", 2)}, cur(2)); err == nil {
		t.Fatal("Apply hid the write failure")
	}
	assertFile(t, p, before)
	if l.Cursor() != cur(1) {
		t.Fatalf("cursor moved to %v", l.Cursor())
	}
	l.fs = real
	apply(t, l, cur(2), put("b", "2", 2))
	if got := dumpLog(t, p); !slices.Equal(got, []string{"a=1@rev 1", "b=2@rev 2", "cursor rev 2"}) {
		t.Fatal(got)
	}
}

func TestLogUndoableFailuresPoison(t *testing.T) {
	inject := errors.New("injected")
	// A small batch fsyncs before its index work, a large one beside it.
	for _, step := range []string{"truncate", "sync", "sync beside the index work"} {
		t.Run(step, func(t *testing.T) {
			p := newPath(t)
			l := openLog(t, p, Options{})
			apply(t, l, cur(1), put("a", "1", 1))
			switch step {
			case "truncate":
				l.fs.writeAt = func(*os.File, []byte, int64) (int, error) { return 0, inject }
				l.fs.truncate = func(*os.File, int64) error { return inject }
			case "sync", "sync beside the index work":
				l.fs.sync = func(*os.File) error { return inject }
			}
			batch := []kvcore.Update{put("b", "2", 2)}
			if step == "sync beside the index work" {
				for i := range syncAsideMin {
					batch = append(batch, put(fmt.Sprintf("b%02d", i), "2", 2))
				}
			}
			if err := l.Apply(context.Background(), batch, cur(2)); !errors.Is(err, inject) {
				t.Fatalf("err = %v", err)
			}
			if _, err := l.Get("b"); !errors.Is(err, kvcore.ErrNotFound) || l.Cursor() != cur(1) {
				t.Fatal("the batch whose write or fsync failed reached the fold")
			}
			l.fs = osFS()
			err := l.Apply(context.Background(), []kvcore.Update{put("c", "3", 3)}, cur(3))
			if !errors.Is(err, ErrPoisoned) || !errors.Is(err, inject) {
				t.Fatalf("Apply after an undoable failure: %v, want ErrPoisoned", err)
			}
			if err := l.Compact(); !errors.Is(err, ErrPoisoned) {
				t.Fatalf("Compact on a poisoned log: %v", err)
			}
			l.Close()
			l = openLog(t, p, Options{})
			if l.Cursor() == cur(3) {
				t.Fatal("the refused batch reached the file")
			}
		})
	}
}

func TestLogSyncModes(t *testing.T) {
	for _, mode := range []SyncMode{SyncCheckpoint, SyncNone} {
		t.Run(mode.String(), func(t *testing.T) {
			p := newPath(t)
			l := openLog(t, p, Options{Sync: mode})
			syncs := 0
			real := l.fs.sync
			l.fs.sync = func(f *os.File) error { syncs++; return real(f) }
			apply(t, l, cur(1), put("a", "1", 1))
			apply(t, l, cur(2))
			if want := map[SyncMode]int{SyncCheckpoint: 2, SyncNone: 0}[mode]; syncs != want {
				t.Fatalf("%d fsyncs for 2 applies, want %d", syncs, want)
			}
		})
	}
}

// blockImage makes the next compaction wait, once its temporary file
// exists, until release is closed, after reporting on started that the job
// is writing.
func blockImage(l *Log) (started, release chan struct{}) {
	started, release = make(chan struct{}), make(chan struct{})
	real := l.fs.createTemp
	l.fs.createTemp = func(dir, pattern string) (*os.File, error) {
		f, err := real(dir, pattern)
		close(started)
		<-release
		return f, err
	}
	return started, release
}

// Appends made while a background compaction writes its image are neither
// blocked by it nor lost: they reach the compacted file.
func TestLogBackgroundCompactionKeepsConcurrentAppends(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1), put("b", "1", 1))
	started, release := blockImage(l)
	l.due = 0                             // the next Apply makes compaction due
	apply(t, l, cur(2), put("a", "2", 2)) // crosses the threshold: compaction starts
	<-started
	job := l.job
	if job == nil {
		t.Fatal("no compaction started")
	}
	// The job is stuck writing its image; Apply, Get and Range still work.
	apply(t, l, cur(3), put("c", "3", 3), del("b", 3))
	apply(t, l, cur(4), put("a", "4", 4))
	if e, err := l.Get("a"); err != nil || string(e.Value) != "4" {
		t.Fatalf("Get during compaction = %+v, %v", e, err)
	}
	if got := foldtest.Dump(t, l, ""); !slices.Equal(got, []string{"a=4", "c=3"}) {
		t.Fatalf("Range during compaction = %q", got)
	}
	close(release)
	<-job.done
	if job.err != nil {
		t.Fatal(job.err)
	}
	if st := l.Stats(); st.Compactions != 1 {
		t.Fatalf("stats %+v", st)
	}
	apply(t, l, cur(5), put("d", "5", 5)) // lands in the new file, not the replaced one
	want := []string{"a=4@rev 4", "c=3@rev 3", "d=5@rev 5", "cursor rev 5"}
	if got := dumpLog(t, p); !slices.Equal(got, want) {
		t.Fatalf("file holds %q, want %q", got, want)
	}
	if got := foldtest.Dump(t, l, ""); !slices.Equal(got, []string{"a=4", "c=3", "d=5"}) {
		t.Fatalf("fold after compaction = %q", got)
	}
}

// A failure (or a crash) at any step of a compaction leaves a log that loads
// to the full fold, and later appends are not lost.
func TestLogCompactionFailureAtEachStep(t *testing.T) {
	inject := errors.New("injected")
	for _, step := range []string{"create", "write", "sync", "tailsync", "rename", "syncdir"} {
		t.Run(step, func(t *testing.T) {
			p := newPath(t)
			l := openLog(t, p, Options{})
			apply(t, l, cur(1), put("a", "1", 1), put("b", "1", 1))
			apply(t, l, cur(2), put("a", "2", 2))
			real := osFS()
			syncs := 0
			switch step {
			case "create":
				l.fs.createTemp = func(string, string) (*os.File, error) { return nil, inject }
			case "write":
				l.fs.write = func(*os.File, []byte) (int, error) { return 0, inject }
			case "sync", "tailsync":
				fail := map[string]int{"sync": 1, "tailsync": 2}[step]
				l.fs.sync = func(f *os.File) error {
					if syncs++; syncs == fail {
						return inject
					}
					return real.sync(f)
				}
			case "rename":
				l.fs.rename = func(string, string) error { return inject }
			case "syncdir":
				l.fs.syncDir = func(string) error { return inject }
			}
			if err := l.Compact(); !errors.Is(err, inject) {
				t.Fatalf("Compact = %v", err)
			}
			want := []string{"a=2@rev 2", "b=1@rev 1", "cursor rev 2"}
			if got := dumpLog(t, p); !slices.Equal(got, want) {
				t.Fatalf("after the failure the file loads as %q", got)
			}
			if m, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".fold.snap.tmp-*")); len(m) != 0 {
				t.Fatalf("temporary files left: %q", m)
			}
			l.fs = osFS()
			apply(t, l, cur(3), put("c", "3", 3))
			l.Close()
			l = openLog(t, p, Options{})
			if got := foldtest.Dump(t, l, ""); !slices.Equal(got, []string{"a=2", "b=1", "c=3"}) || l.Cursor() != cur(3) {
				t.Fatalf("after reopen: %q at %v", got, l.Cursor())
			}
		})
	}
}

// Open removes the temporary files a crash during compaction leaves.
func TestLogOpenRemovesCrashLeftovers(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1))
	l.Close()
	stale := filepath.Join(filepath.Dir(p), ".fold.snap.tmp-123")
	os.WriteFile(stale, []byte("half a compaction"), 0o644)
	openLog(t, p, Options{})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("leftover temporary file survived Open")
	}
}

// Compaction reclaims the arena: overwritten values do not stay in memory.
func TestLogCompactionReclaimsMemory(t *testing.T) {
	l := openLog(t, newPath(t), Options{CompactThreshold: 1 << 30})
	for r := range 20 {
		var batch []kvcore.Update
		for k := range 200 {
			// A value of a new length each round: none is written over its predecessor.
			batch = append(batch, put(fmt.Sprintf("key-%03d", k), fmt.Sprintf("value-%03d-%02d-%s", k, r, strings.Repeat("p", r)), uint64(r+1)))
		}
		apply(t, l, cur(uint64(r+1)), batch...)
	}
	arenaBytes := func() (n int) {
		for _, c := range l.idx.ar.chunks {
			n += len(c)
		}
		return n
	}
	before := arenaBytes()
	if err := l.Compact(); err != nil {
		t.Fatal(err)
	}
	after := arenaBytes()
	// The arena is the compacted image, as after a load of the file.
	if int64(after) != compactedSize(l.idx.liveBytes, l.idx.live, l.Cursor()) || after*10 > before {
		t.Fatalf("arena %d bytes before, %d after compaction (live %d)", before, after, l.idx.liveBytes)
	}
	if e, err := l.Get("key-007"); err != nil || string(e.Value) != "value-007-19-"+strings.Repeat("p", 19) {
		t.Fatalf("%+v %v", e, err)
	}
}

func TestLogClosed(t *testing.T) {
	l := openLog(t, newPath(t), Options{})
	l.Close()
	if err := l.Apply(context.Background(), nil, cur(1)); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := l.Get("a"); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// The conformance hammer with background compactions running throughout;
// the reopened file holds exactly the reference state.
func TestLogHammerWithBackgroundCompactions(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{CompactThreshold: 1}) // due whenever the appends outgrow the compacted file
	want, last := foldtest.Hammer(t, l, 150)
	if l.Stats().Compactions == 0 {
		t.Fatal("no background compaction ran")
	}
	if n := l.Len(); n != len(want) {
		t.Fatalf("Len = %d, want %d", n, len(want))
	}
	l.Close()
	l = openLog(t, p, Options{})
	if got := foldtest.Dump(t, l, ""); !slices.Equal(got, want) || l.Cursor() != last {
		t.Fatalf("reopened fold diverged (%d vs %d entries) at %v", len(got), len(want), l.Cursor())
	}
}

// After a compaction whose directory fsync failed (the rename may not be
// durable), Apply acknowledges nothing until a retry of that fsync
// succeeds: a power loss could otherwise bring the replaced file back and
// lose the batches appended to the new one.
func TestLogRetriesDirectorySyncAfterCompaction(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1))
	apply(t, l, cur(2), put("a", "2", 2))
	inject := errors.New("injected")
	real := osFS()
	l.fs.syncDir = func(string) error { return inject }
	if err := l.Compact(); !errors.Is(err, inject) {
		t.Fatalf("Compact = %v", err)
	}
	before := readFile(t, p)
	if err := l.Apply(context.Background(), []kvcore.Update{put("b", "3", 3)}, cur(3)); !errors.Is(err, inject) {
		t.Fatalf("Apply while the directory is not synced: %v, want the sync error", err)
	}
	assertFile(t, p, before)
	if _, err := l.Get("b"); !errors.Is(err, kvcore.ErrNotFound) || l.Cursor() != cur(2) {
		t.Fatal("the refused batch reached the fold")
	}
	syncs := 0
	l.fs.syncDir = func(d string) error { syncs++; return real.syncDir(d) }
	apply(t, l, cur(3), put("b", "3", 3))
	apply(t, l, cur(4), put("c", "4", 4))
	if syncs != 1 {
		t.Fatalf("%d directory syncs for the retry and one more Apply, want 1", syncs)
	}
	if got := dumpLog(t, p); !slices.Equal(got, []string{"a=2@rev 2", "b=3@rev 3", "c=4@rev 4", "cursor rev 4"}) {
		t.Fatalf("file holds %q", got)
	}
}

// A log that only grew (a first sync: new keys, one cursor per batch) holds
// almost no garbage and is not rewritten however much is appended; once
// overwrites have made half of it garbage, it is compacted.
func TestLogCompactsGarbageNotGrowth(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{CompactThreshold: 1})
	value := strings.Repeat("v", 100)
	rev := uint64(0)
	round := func() {
		for b := range 20 {
			batch := make([]kvcore.Update, 10)
			for i := range batch {
				rev++
				batch[i] = put(fmt.Sprintf("k%04d", b*10+i), value, rev)
			}
			apply(t, l, cur(rev), batch...)
		}
	}
	round()
	if st := l.Stats(); st.Compactions != 0 {
		t.Fatalf("a log of new keys was compacted: %+v", st)
	}
	round() // overwrites every key
	round()
	l.Close()
	if st := l.Stats(); st.Compactions == 0 {
		t.Fatalf("overwrites never compacted: %+v", st)
	}
}
