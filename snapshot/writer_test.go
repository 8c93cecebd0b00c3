package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// The Rust crate's src/snapshot.rs unit tests (upstream spec §11.B), ported
// one for one. "AL" is the writer with an unbounded compaction threshold.

func openW(t testing.TB, p string, threshold int64) *Writer {
	t.Helper()
	if threshold == 0 {
		threshold = 1 << 62
	}
	w, err := OpenWriter(p, Options{CompactThreshold: threshold})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// writeClosed writes ops with a new writer and closes it, as the crate's
// tests drop theirs at the end of a scope (a Writer holds the file's lock).
func writeClosed(t testing.TB, p string, ops ...any) {
	t.Helper()
	w := openW(t, p, 0)
	write(t, w, ops...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, w *Writer, ops ...any) {
	t.Helper()
	for _, op := range ops {
		switch op := op.(type) {
		case kvcore.Update:
			if err := w.WriteUpdate(op); err != nil {
				t.Fatal(err)
			}
		case kvcore.Cursor:
			if _, err := w.Checkpoint(op); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func newPath(t testing.TB) string { return filepath.Join(t.TempDir(), "fold.snap") }

func TestWriterRoundTrip(t *testing.T) {
	p := newPath(t)
	w := openW(t, p, 0)
	write(t, w, put("node.us-east-1", "val1", 1), put("node.eu-west-1", "val2", 2), cur(2))
	s := mustLoad(t, p)
	if got := kvs(s.Entries); !equalStrings(got, []string{"node.eu-west-1=val2@rev 2", "node.us-east-1=val1@rev 1"}) || s.Cursor != cur(2) {
		t.Fatalf("%q %v", got, s.Cursor)
	}
}

func TestWriterMultipleBatches(t *testing.T) {
	p := newPath(t)
	writeClosed(t, p, put("a", "1", 1), cur(1), put("b", "2", 2), cur(2))
	if s := mustLoad(t, p); len(s.Entries) != 2 || s.Cursor != cur(2) {
		t.Fatalf("%+v", s)
	}
}

func TestWriterDeleteRemovesEntry(t *testing.T) {
	p := newPath(t)
	writeClosed(t, p, put("a", "1", 1), put("b", "2", 2), cur(2), del("a", 3), cur(3))
	if s := mustLoad(t, p); !equalStrings(kvs(s.Entries), []string{"b=2@rev 2"}) || s.Cursor != cur(3) {
		t.Fatalf("%+v", s)
	}
}

func TestWriterPurgeRemovesEntry(t *testing.T) {
	p := newPath(t)
	writeClosed(t, p, put("a", "1", 1), cur(1), purge("a", 2), cur(2))
	if s := mustLoad(t, p); len(s.Entries) != 0 || s.Cursor != cur(2) {
		t.Fatalf("%+v", s)
	}
}

func TestWriterCorruptedMidFile(t *testing.T) {
	p := newPath(t)
	w := openW(t, p, 0)
	for i, k := range []string{"a", "b", "c"} {
		write(t, w, put(k, string(bytes.Repeat([]byte{'x'}, 20)), uint64(i+1)), cur(uint64(i+1)))
	}
	b := readFile(t, p)
	b[46] ^= 0xff
	os.WriteFile(p, b, 0o644)
	if _, err := Load(p); !errors.Is(err, ErrCorrupted) {
		t.Fatalf("err = %v, want ErrCorrupted", err)
	}
	assertFile(t, p, b)
}

func TestWriterTruncatedFinalRecordRecovered(t *testing.T) {
	p := newPath(t)
	writeClosed(t, p, put("a", "1", 1), cur(1), put("b", "2", 2), cur(2))
	b := readFile(t, p)
	os.WriteFile(p, b[:len(b)-3], 0o644)
	if s := mustLoad(t, p); len(s.Entries) == 0 || s.Entries[0].Key != "a" {
		t.Fatalf("%+v", s)
	}
}

func TestWriterTruncatedTailRepairedThenAppendable(t *testing.T) {
	p := newPath(t)
	writeClosed(t, p, put("a", "1", 1), put("b", "2", 2), cur(2))
	b := readFile(t, p)
	os.WriteFile(p, b[:len(b)-3], 0o644)
	if s := mustLoad(t, p); len(s.Entries) != 2 {
		t.Fatalf("%+v", s)
	}
	writeClosed(t, p, put("c", "3", 3), cur(3))
	if s := mustLoad(t, p); len(s.Entries) != 3 || s.Cursor != cur(3) {
		t.Fatalf("%+v", s)
	}
}

func TestWriterRepeatedCursorRecordsTriggerCompaction(t *testing.T) {
	p := newPath(t)
	w := openW(t, p, 0)
	write(t, w, put("a", "1", 1))
	for i := uint64(1); i <= 10; i++ {
		write(t, w, cur(i))
	}
	w.Close()
	before := readFile(t, p)
	s := mustLoad(t, p)
	after := readFile(t, p)
	if len(s.Entries) != 1 || s.Cursor != cur(10) || len(after) >= len(before) {
		t.Fatalf("%+v, %d -> %d bytes", s, len(before), len(after))
	}
	mustLoad(t, p)
	assertFile(t, p, after)
}

func TestWriterAlreadyCompactFileReloadsUnchanged(t *testing.T) {
	p := newPath(t)
	writeClosed(t, p, put("a", "1", 1), put("b", "2", 2), cur(2))
	mustLoad(t, p)
	first := readFile(t, p)
	s := mustLoad(t, p)
	assertFile(t, p, first)
	if len(s.Entries) != 2 || s.Cursor != cur(2) {
		t.Fatalf("%+v", s)
	}
}

func TestWriterBadMagicAndVersion(t *testing.T) {
	for _, tc := range []struct{ file, want string }{{"XXXX\x01\x00", "magic"}, {"PGSS\x03\x00", "version"}} {
		p := writeTemp(t, []byte(tc.file))
		_, err := Load(p)
		if !errors.Is(err, ErrInvalidFormat) || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Fatalf("err = %v, want InvalidFormat mentioning %q", err, tc.want)
		}
	}
}

func TestWriterEmptyLogReturnsNone(t *testing.T) {
	p := newPath(t)
	openW(t, p, 0).Close()
	assertFile(t, p, header[:])
	if s := mustLoad(t, p); s != nil {
		t.Fatalf("%+v", s)
	}
}

func TestWriterCompactionOnLoadShrinksFile(t *testing.T) {
	p := newPath(t)
	w := openW(t, p, 0)
	for i := uint64(0); i < 10; i++ {
		write(t, w, put("same-key", fmt.Sprintf("v%d", i), i), cur(i))
	}
	w.Close()
	before := len(readFile(t, p))
	s := mustLoad(t, p)
	if len(s.Entries) != 1 || string(s.Entries[0].Value) != "v9" || len(readFile(t, p)) >= before {
		t.Fatalf("%+v", s)
	}
}

func TestWriterCompactWhenThresholdExceeded(t *testing.T) {
	p := newPath(t)
	w := openW(t, p, 100)
	compactions := 0
	for i := uint64(0); i < 20; i++ {
		write(t, w, put("key", fmt.Sprintf("value-%d", i), i))
		due, err := w.Checkpoint(cur(i))
		if err != nil {
			t.Fatal(err)
		}
		if due {
			if err := w.Compact(); err != nil {
				t.Fatal(err)
			}
			compactions++
		}
	}
	if compactions == 0 {
		t.Fatal("checkpoint never reported compaction due")
	}
	if s := mustLoad(t, p); len(s.Entries) != 1 || string(s.Entries[0].Value) != "value-19" {
		t.Fatalf("%+v", s)
	}
}

func TestWriterReopenAppends(t *testing.T) {
	p := newPath(t)
	w := openW(t, p, 0)
	write(t, w, put("a", "1", 1), cur(1))
	w.Close()
	writeClosed(t, p, put("b", "2", 2), cur(2))
	if s := mustLoad(t, p); len(s.Entries) != 2 || s.Cursor != cur(2) {
		t.Fatalf("%+v", s)
	}
}

func TestWriterLargeValues(t *testing.T) {
	p := newPath(t)
	big := bytes.Repeat([]byte{0xab}, 100_000)
	writeClosed(t, p, kvcore.Update{Op: kvcore.OpPut, Key: "big", Value: big, Version: kvcore.RevisionVersion(1)}, cur(1))
	if s := mustLoad(t, p); !bytes.Equal(s.Entries[0].Value, big) {
		t.Fatal("large value did not round-trip")
	}
}

func TestWriterCursorOnlySnapshot(t *testing.T) {
	p := newPath(t)
	writeClosed(t, p, cur(42))
	if s := mustLoad(t, p); s == nil || len(s.Entries) != 0 || s.Cursor != cur(42) {
		t.Fatalf("%+v", s)
	}
}

func TestSnapshotStaleKeys(t *testing.T) {
	p := newPath(t)
	writeClosed(t, p, put("node.a", "1", 1), put("node.b", "2", 2), put("node.c", "3", 3), cur(3))
	s := mustLoad(t, p)
	set := func(ks ...string) map[string]struct{} {
		m := map[string]struct{}{}
		for _, k := range ks {
			m[k] = struct{}{}
		}
		return m
	}
	if got := s.StaleKeys(set("node.a", "node.c")); !equalStrings(got, []string{"node.b"}) {
		t.Fatal(got)
	}
	if got := s.StaleKeys(set("node.a", "node.b", "node.c")); len(got) != 0 {
		t.Fatal(got)
	}
	if got := s.StaleKeys(set()); len(got) != 3 {
		t.Fatal(got)
	}
}

func TestWriterNonU64VersionRoundTrips(t *testing.T) {
	p := newPath(t)
	v, _ := kvcore.VersionFromBytes([]byte{9, 8, 7, 6, 5, 4, 3, 2, 1, 0})
	writeClosed(t, p, kvcore.Update{Op: kvcore.OpPut, Key: "fdb.key", Value: []byte("x"), Version: v}, cur(1))
	if s := mustLoad(t, p); s.Entries[0].Version != v {
		t.Fatalf("version %v, want %v", s.Entries[0].Version, v)
	}
}

func TestWriterCompactPreservesUncheckpointedWrites(t *testing.T) {
	p := newPath(t)
	w := openW(t, p, 0)
	write(t, w, put("node.a", "survives", 1))
	if err := w.Compact(); err != nil {
		t.Fatal(err)
	}
	if s := mustLoad(t, p); len(s.Entries) != 1 || string(s.Entries[0].Value) != "survives" {
		t.Fatalf("%+v", s)
	}
}

// §11.B compact_to_file_fsyncs_parent_dirent, through the seams: compaction
// fsyncs the new file before the rename and the directory after it.
func TestWriterCompactSyncsFileThenRenameThenDirectory(t *testing.T) {
	p := newPath(t)
	w := openW(t, p, 0)
	write(t, w, put("a", "1", 1), put("a", "2", 2), cur(2))
	var steps []string
	real := osFS()
	w.fs.sync = func(f *os.File) error { steps = append(steps, "sync "+filepath.Base(f.Name())); return real.sync(f) }
	w.fs.rename = func(a, b string) error { steps = append(steps, "rename"); return real.rename(a, b) }
	w.fs.syncDir = func(d string) error { steps = append(steps, "syncdir "+d); return real.syncDir(d) }
	if err := w.Compact(); err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 || steps[1] != "rename" || steps[2] != "syncdir "+filepath.Dir(p) || steps[0] == "sync fold.snap" {
		t.Fatalf("steps %q, want sync of the temporary file, rename, directory sync", steps)
	}
}

// Spec §13.3: the Rust writer keeps appending to the replaced inode when the
// directory fsync fails after the rename. Ours appends to the new file.
func TestWriterCompactDirSyncFailureKeepsNoStaleHandle(t *testing.T) {
	p := newPath(t)
	w := openW(t, p, 0)
	write(t, w, put("a", "1", 1), put("a", "2", 2), cur(2))
	w.fs.syncDir = func(string) error { return errors.New("injected dir sync failure") }
	if err := w.Compact(); err == nil {
		t.Fatal("Compact hid the directory sync failure")
	}
	w.fs = osFS()
	write(t, w, put("b", "3", 3), cur(3))
	if s := mustLoad(t, p); len(s.Entries) != 2 || s.Cursor != cur(3) {
		t.Fatalf("append after compaction lost: %+v", s)
	}
}

func TestWriterCompactFailuresLeaveLogIntact(t *testing.T) {
	inject := errors.New("injected")
	for _, step := range []string{"create", "write", "sync", "rename"} {
		t.Run(step, func(t *testing.T) {
			p := newPath(t)
			w := openW(t, p, 0)
			write(t, w, put("a", "1", 1), put("a", "2", 2), cur(2))
			before := readFile(t, p)
			real := osFS()
			switch step {
			case "create":
				w.fs.createTemp = func(string, string) (*os.File, error) { return nil, inject }
			case "write":
				w.fs.write = func(f *os.File, b []byte) (int, error) {
					if f.Name() != p {
						return 0, inject
					}
					return real.write(f, b)
				}
			case "sync":
				w.fs.sync = func(*os.File) error { return inject }
			case "rename":
				w.fs.rename = func(string, string) error { return inject }
			}
			if err := w.Compact(); !errors.Is(err, inject) {
				t.Fatalf("err = %v", err)
			}
			assertFile(t, p, before)
			w.fs = osFS()
			write(t, w, put("b", "3", 3), cur(3))
			if s := mustLoad(t, p); len(s.Entries) != 2 || s.Cursor != cur(3) {
				t.Fatalf("%+v", s)
			}
			if m, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".fold.snap.tmp-*")); len(m) != 0 {
				t.Fatalf("temporary files left: %q", m)
			}
		})
	}
}

func TestWriterRefusesUnloadableUpdates(t *testing.T) {
	w := openW(t, newPath(t), 0)
	if err := w.WriteUpdate(kvcore.Update{Op: kvcore.OpPut, Key: "k", Value: make([]byte, MaxValueLen+1)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if err := w.WriteUpdate(kvcore.Update{Op: kvcore.OpPut, Key: string(make([]byte, MaxKeyLen+1))}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestWriterRefusesShortExistingFile(t *testing.T) {
	p := writeTemp(t, []byte("PGS"))
	if _, err := OpenWriter(p, Options{}); !errors.Is(err, ErrInvalidFormat) {
		t.Fatalf("err = %v", err)
	}
	assertFile(t, p, []byte("PGS"))
}

// After a compaction whose directory fsync failed, a checkpoint is not
// reported durable until a retry of that fsync succeeds; the failure does
// not poison the writer.
func TestWriterRetriesDirectorySyncAfterCompaction(t *testing.T) {
	p := newPath(t)
	w := openW(t, p, 0)
	write(t, w, put("a", "1", 1), put("a", "2", 2), cur(2))
	inject := errors.New("injected")
	real := osFS()
	w.fs.syncDir = func(string) error { return inject }
	if err := w.Compact(); !errors.Is(err, inject) {
		t.Fatalf("Compact = %v", err)
	}
	write(t, w, put("b", "3", 3))
	if _, err := w.Checkpoint(cur(3)); !errors.Is(err, inject) {
		t.Fatalf("Checkpoint while the directory is not synced: %v, want the sync error", err)
	}
	syncs := 0
	w.fs.syncDir = func(d string) error { syncs++; return real.syncDir(d) }
	write(t, w, cur(3), put("c", "4", 4), cur(4))
	if syncs != 1 {
		t.Fatalf("%d directory syncs for the retry and one more checkpoint, want 1", syncs)
	}
	w.Close()
	if s := mustLoad(t, p); !equalStrings(kvs(s.Entries), []string{"a=2@rev 2", "b=3@rev 3", "c=4@rev 4"}) || s.Cursor != cur(4) {
		t.Fatalf("%+v", s)
	}
}
