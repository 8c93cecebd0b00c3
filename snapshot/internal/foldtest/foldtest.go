// Package foldtest is the conformance suite every [kvcore.Fold] backend of
// this module passes: the Rust crate's SnapshotStore conformance tests
// (upstream spec §11.D), concurrent readers, and crash consistency at every
// torn-write state the backend can enumerate.
package foldtest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/internal/artifact"
)

// Backend describes the fold implementation under test.
type Backend struct {
	// Name is the artifact backend identity ("append-log", "pebble").
	Name string
	// NewLoc returns an unused location (file path or directory) for a fold.
	NewLoc func(t testing.TB) string
	// Open opens the fold at loc, creating it when absent.
	Open func(loc string) (kvcore.Fold, error)
	// Import verifies the artifact in dir and opens it at loc.
	Import func(dir, loc string) (kvcore.Fold, error)
	// Crashes enumerates the states a crash could leave the closed fold at
	// loc in (at least every torn write of its last file).
	Crashes func(t *testing.T, loc string) iter.Seq[Crash]
}

// Crash is one simulated crash state.
type Crash struct {
	Name string
	// Open opens the fold as a restart would find it.
	Open func() (kvcore.Fold, error)
	// MayRefuse: the state is damage a crash of this backend cannot cause
	// (e.g. a torn file header, since files are created by rename); opening
	// it may fail but must not return a fold that breaks the invariant.
	MayRefuse bool
}

func putU(k, v string, rev uint64) kvcore.Update {
	return kvcore.Update{Op: kvcore.OpPut, Key: k, Value: []byte(v), Version: kvcore.RevisionVersion(rev)}
}

func delU(k string, rev uint64) kvcore.Update {
	return kvcore.Update{Op: kvcore.OpDelete, Key: k, Version: kvcore.RevisionVersion(rev)}
}

// Stream is the fixture stream of the Rust conformance suite.
var Stream = []kvcore.Update{
	putU("node.a", "v1", 1), putU("node.b", "v2", 2), putU("svc.x", "sx", 3),
	putU("node.a", "v1b", 4), delU("node.b", 5), putU("node.c", "v3", 6), putU("svc.y", "sy", 7),
}

// Expected is the fold of Stream, as "key=value".
var Expected = []string{"node.a=v1b", "node.c=v3", "svc.x=sx", "svc.y=sy"}

func cursorOf(updates []kvcore.Update) kvcore.Cursor {
	return kvcore.CursorAt(updates[len(updates)-1].Version)
}

// foldIn applies updates in chunks of 3, each with the cursor of its last update.
func foldIn(t testing.TB, f kvcore.Fold, updates []kvcore.Update) {
	t.Helper()
	for c := range slices.Chunk(updates, 3) {
		if err := f.Apply(context.Background(), c, cursorOf(c)); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
}

// Dump lists the fold as "key=value" in Range order.
func Dump(t testing.TB, f kvcore.Fold, prefix string) []string {
	t.Helper()
	var out []string
	err := f.Range(context.Background(), prefix, "", func(e kvcore.Entry) error {
		out = append(out, e.Key+"="+string(e.Value))
		return nil
	})
	if err != nil {
		t.Fatalf("Range(%q): %v", prefix, err)
	}
	return out
}

func open(t testing.TB, b Backend, loc string) kvcore.Fold {
	t.Helper()
	f, err := b.Open(loc)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func reopen(t testing.TB, b Backend, f kvcore.Fold, loc string) kvcore.Fold {
	t.Helper()
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return open(t, b, loc)
}

func expectState(t testing.TB, f kvcore.Fold, cursor kvcore.Cursor, want []string) {
	t.Helper()
	if got := Dump(t, f, ""); !slices.Equal(got, want) || f.Cursor() != cursor {
		t.Fatalf("fold is %q at %v, want %q at %v", got, f.Cursor(), want, cursor)
	}
}

// Run runs the suite.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"RoundTrip", testRoundTrip},
		{"GetRange", testGetRange},
		{"RangeStreamsAndStops", testRangeStreamsAndStops},
		{"RangeAfterPages", testRangeAfter},
		{"CursorResume", testCursorResume},
		{"PureFold", testPureFold},
		{"Purge", testPurge},
		{"EmptyBatchAdvancesCursor", testEmptyBatch},
		{"EmptyValue", testEmptyValue},
		{"StaleKeys", testStaleKeys},
		{"ConcurrentReaders", testConcurrentReaders},
		{"ExportImportRoundTrip", testExportImport},
		{"ImportResumeContinuesFold", testImportResume},
		{"ImportRejects", testImportRejects},
		{"ImportRejectsNonEmptyDest", testImportNonEmptyDest},
		{"ExportRejectsNonEmptyDest", testExportNonEmptyDest},
		{"ExportEmptyStore", testExportEmpty},
		{"CrashConsistency", testCrashConsistency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, b) })
	}
}

func testRoundTrip(t *testing.T, b Backend) {
	loc := b.NewLoc(t)
	f := open(t, b, loc)
	foldIn(t, f, Stream)
	expectState(t, reopen(t, b, f, loc), kvcore.RevisionCursor(7), Expected)
}

func testGetRange(t *testing.T, b Backend) {
	f := open(t, b, b.NewLoc(t))
	foldIn(t, f, Stream)
	e, err := f.Get("svc.x")
	if err != nil || string(e.Value) != "sx" || e.Version != kvcore.RevisionVersion(3) {
		t.Fatalf("Get(svc.x) = %+v, %v", e, err)
	}
	if e, err := f.Get("node.a"); err != nil || string(e.Value) != "v1b" {
		t.Fatalf("Get(node.a) = %+v, %v", e, err)
	}
	for _, k := range []string{"node.b", "absent", ""} {
		if _, err := f.Get(k); !errors.Is(err, kvcore.ErrNotFound) {
			t.Fatalf("Get(%q) err = %v, want ErrNotFound", k, err)
		}
	}
	for prefix, want := range map[string][]string{
		"node.": {"node.a=v1b", "node.c=v3"}, "svc.": {"svc.x=sx", "svc.y=sy"}, "": Expected, "zzz": nil, "node.a": {"node.a=v1b"},
	} {
		if got := Dump(t, f, prefix); !slices.Equal(got, want) {
			t.Fatalf("Range(%q) = %q, want %q", prefix, got, want)
		}
	}
}

func testRangeStreamsAndStops(t *testing.T, b Backend) {
	f := open(t, b, b.NewLoc(t))
	foldIn(t, f, Stream)
	stop := errors.New("stop")
	calls := 0
	err := f.Range(context.Background(), "", "", func(kvcore.Entry) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Fatalf("Range returned %v after %d calls, want the callback's error after 2", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Range(ctx, "", "", func(kvcore.Entry) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Range with a cancelled context = %v", err)
	}
	// Many keys: Range crosses pages in order and sees each key once.
	var batch []kvcore.Update
	for i := range 1000 {
		batch = append(batch, putU(fmt.Sprintf("many.%04d", 999-i), "v", uint64(8+i)))
	}
	if err := f.Apply(context.Background(), batch, kvcore.RevisionCursor(1007)); err != nil {
		t.Fatal(err)
	}
	got := Dump(t, f, "many.")
	if len(got) != 1000 || !slices.IsSorted(got) || got[0] != "many.0000=v" {
		t.Fatalf("Range over 1000 keys gave %d entries (sorted %v)", len(got), slices.IsSorted(got))
	}
}

// testRangeAfter pages through a fold the way a plugin's view_scan does:
// each page starts strictly after the last key of the previous one.
func testRangeAfter(t *testing.T, b Backend) {
	f := open(t, b, b.NewLoc(t))
	foldIn(t, f, Stream)
	for _, tt := range []struct {
		prefix, after string
		want          []string
	}{
		{"", "node.a", []string{"node.c=v3", "svc.x=sx", "svc.y=sy"}},
		{"", "node.b", []string{"node.c=v3", "svc.x=sx", "svc.y=sy"}}, // after an absent key
		{"svc.", "node.c", []string{"svc.x=sx", "svc.y=sy"}},          // after below the prefix
		{"node.", "node.c", nil},
		{"node.", "zzz", nil}, // after beyond the prefix
		{"svc.", "svc.x", []string{"svc.y=sy"}},
	} {
		var got []string
		err := f.Range(context.Background(), tt.prefix, tt.after, func(e kvcore.Entry) error {
			got = append(got, e.Key+"="+string(e.Value))
			return nil
		})
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Range(%q, after %q) = %q, %v; want %q", tt.prefix, tt.after, got, err, tt.want)
		}
	}
	// Paging 1000 keys 7 at a time sees each exactly once, in order.
	var batch []kvcore.Update
	for i := range 1000 {
		batch = append(batch, putU(fmt.Sprintf("page.%04d", i), "v", uint64(8+i)))
	}
	if err := f.Apply(context.Background(), batch, kvcore.RevisionCursor(1007)); err != nil {
		t.Fatal(err)
	}
	errPage := errors.New("page full")
	var seen []string
	for after := ""; ; {
		n := 0
		err := f.Range(context.Background(), "page.", after, func(e kvcore.Entry) error {
			if n == 7 {
				return errPage
			}
			n++
			seen = append(seen, e.Key)
			after = e.Key
			return nil
		})
		if err != nil && !errors.Is(err, errPage) {
			t.Fatal(err)
		}
		if n < 7 || err == nil {
			break
		}
	}
	if len(seen) != 1000 || !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != 1000 {
		t.Fatalf("paging saw %d keys (sorted %v), want 1000 distinct in order", len(seen), slices.IsSorted(seen))
	}
}

func testCursorResume(t *testing.T, b Backend) {
	loc := b.NewLoc(t)
	f := open(t, b, loc)
	foldIn(t, f, Stream[:3])
	f = reopen(t, b, f, loc)
	if f.Cursor() != kvcore.RevisionCursor(3) {
		t.Fatalf("resume cursor %v, want rev 3", f.Cursor())
	}
	foldIn(t, f, Stream[3:])
	expectState(t, reopen(t, b, f, loc), kvcore.RevisionCursor(7), Expected)
}

func testPureFold(t *testing.T, b Backend) {
	ref := open(t, b, b.NewLoc(t))
	foldIn(t, ref, Stream)
	loc := b.NewLoc(t)
	victim := open(t, b, loc)
	foldIn(t, victim, Stream[:4])
	victim.Close()
	if err := os.RemoveAll(loc); err != nil {
		t.Fatal(err)
	}
	victim = open(t, b, loc)
	if !victim.Cursor().IsNone() {
		t.Fatalf("wiped fold has cursor %v", victim.Cursor())
	}
	foldIn(t, victim, Stream)
	expectState(t, victim, kvcore.RevisionCursor(7), Dump(t, ref, ""))
	expectState(t, victim, kvcore.RevisionCursor(7), Expected)
}

func testPurge(t *testing.T, b Backend) {
	loc := b.NewLoc(t)
	f := open(t, b, loc)
	ctx := context.Background()
	if err := f.Apply(ctx, []kvcore.Update{putU("a", "1", 1), putU("b", "2", 2)}, kvcore.RevisionCursor(2)); err != nil {
		t.Fatal(err)
	}
	p := kvcore.Update{Op: kvcore.OpPurge, Key: "a", Version: kvcore.RevisionVersion(3)}
	if err := f.Apply(ctx, []kvcore.Update{p}, kvcore.RevisionCursor(3)); err != nil {
		t.Fatal(err)
	}
	expectState(t, f, kvcore.RevisionCursor(3), []string{"b=2"})
	expectState(t, reopen(t, b, f, loc), kvcore.RevisionCursor(3), []string{"b=2"})
}

func testEmptyBatch(t *testing.T, b Backend) {
	loc := b.NewLoc(t)
	f := open(t, b, loc)
	foldIn(t, f, Stream[:3])
	if err := f.Apply(context.Background(), nil, kvcore.RevisionCursor(9)); err != nil {
		t.Fatal(err)
	}
	f = reopen(t, b, f, loc)
	if f.Cursor() != kvcore.RevisionCursor(9) || len(Dump(t, f, "")) != 3 {
		t.Fatalf("cursor %v, %d entries", f.Cursor(), len(Dump(t, f, "")))
	}
}

func testEmptyValue(t *testing.T, b Backend) {
	loc := b.NewLoc(t)
	f := open(t, b, loc)
	if err := f.Apply(context.Background(), []kvcore.Update{putU("lock", "", 1)}, kvcore.RevisionCursor(1)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e, err := f.Get("lock")
		if err != nil || len(e.Value) != 0 || e.Version != kvcore.RevisionVersion(1) {
			t.Fatalf("Get(lock) = %+v, %v", e, err)
		}
		f = reopen(t, b, f, loc)
	}
}

func testStaleKeys(t *testing.T, b Backend) {
	f := open(t, b, b.NewLoc(t))
	foldIn(t, f, Stream)
	live := map[string]struct{}{"node.a": {}, "svc.y": {}}
	got, err := kvcore.StaleKeys(context.Background(), f, []string{"node.", "svc."}, live)
	if err != nil || !slices.Equal(got, []string{"node.c", "svc.x"}) {
		t.Fatalf("StaleKeys = %q, %v", got, err)
	}
}

// testConcurrentReaders hammers a fold (run with -race).
func testConcurrentReaders(t *testing.T, b Backend) {
	Hammer(t, open(t, b, b.NewLoc(t)), 60)
}

// Hammer applies rounds batches of puts and deletes over 64 keys while
// goroutines Get and Range the fold, failing if a reader sees a torn value
// or an error, or if the final fold differs from the reference fold of the
// batches. It returns that reference (Dump form) and the last cursor.
func Hammer(t *testing.T, f kvcore.Fold, rounds int) (want []string, last kvcore.Cursor) {
	t.Helper()
	ctx := context.Background()
	const keys = 64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	check := func(e kvcore.Entry) error {
		if !strings.HasPrefix(string(e.Value), "val-"+e.Key+"-") {
			return fmt.Errorf("torn value %q for %s", e.Value, e.Key)
		}
		return nil
	}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if g%2 == 0 {
					err = f.Range(ctx, "k.", "", check)
				} else if e, gerr := f.Get(fmt.Sprintf("k.%02d", i%keys)); gerr == nil {
					err = check(e)
				} else if !errors.Is(gerr, kvcore.ErrNotFound) {
					err = gerr
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	ref := map[string]string{}
	rev := uint64(0)
	for r := range rounds {
		var batch []kvcore.Update
		for k := range keys {
			rev++
			key := fmt.Sprintf("k.%02d", (k*7+r)%keys)
			if (k+r)%5 == 0 {
				batch = append(batch, delU(key, rev))
				delete(ref, key)
			} else {
				v := fmt.Sprintf("val-%s-%d", key, rev)
				batch = append(batch, putU(key, v, rev))
				ref[key] = v
			}
		}
		if err := f.Apply(ctx, batch, kvcore.RevisionCursor(rev)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for k, v := range ref {
		want = append(want, k+"="+v)
	}
	slices.Sort(want)
	expectState(t, f, kvcore.RevisionCursor(rev), want)
	return want, kvcore.RevisionCursor(rev)
}

func exportFull(t *testing.T, b Backend) (string, kvcore.Cursor) {
	f := open(t, b, b.NewLoc(t))
	foldIn(t, f, Stream)
	dir := filepath.Join(t.TempDir(), "artifact")
	c, err := f.Export(context.Background(), dir)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	return dir, c
}

func readManifest(t testing.TB, dir string) *artifact.Manifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, artifact.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	m, err := artifact.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testExportImport(t *testing.T, b Backend) {
	dir, c := exportFull(t, b)
	m := readManifest(t, dir)
	if c != kvcore.RevisionCursor(7) || m.CursorHex != "0000000000000007" || len(m.Files) == 0 || m.Backend != b.Name {
		t.Fatalf("export cursor %v, manifest %+v", c, m)
	}
	g, err := b.Import(dir, b.NewLoc(t))
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	defer g.Close()
	expectState(t, g, kvcore.RevisionCursor(7), Expected)
}

func testImportResume(t *testing.T, b Backend) {
	f := open(t, b, b.NewLoc(t))
	foldIn(t, f, Stream[:4])
	dir := filepath.Join(t.TempDir(), "artifact")
	if c, err := f.Export(context.Background(), dir); err != nil || c != kvcore.RevisionCursor(4) {
		t.Fatalf("Export = %v, %v", c, err)
	}
	g, err := b.Import(dir, b.NewLoc(t))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	foldIn(t, g, Stream[4:])
	expectState(t, g, kvcore.RevisionCursor(7), Expected)
}

// rewriteManifest edits MANIFEST.json through fn.
func rewriteManifest(t testing.TB, dir string, fn func(*artifact.Manifest)) {
	t.Helper()
	m := readManifest(t, dir)
	fn(m)
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, artifact.ManifestName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func testImportRejects(t *testing.T, b Backend) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string // the error mentions one of these
	}{
		{"TamperedPayload", func(t *testing.T, dir string) {
			m := readManifest(t, dir)
			largest := slices.MaxFunc(m.Files, func(a, b artifact.File) int { return int(a.Size - b.Size) })
			p := filepath.Join(dir, filepath.FromSlash(largest.Path))
			raw, _ := os.ReadFile(p)
			raw[len(raw)/2] ^= 0xff
			os.WriteFile(p, raw, 0o644)
		}, []string{"checksum", "recover", "cursor"}},
		{"MissingPayloadFile", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, filepath.FromSlash(readManifest(t, dir).Files[0].Path)))
		}, []string{"missing"}},
		{"UndeclaredExtraFile", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "data", "smuggled"), []byte("x"), 0o644)
		}, []string{"undeclared"}},
		{"SymlinkInPayload", func(t *testing.T, dir string) {
			if err := os.Symlink("/etc/passwd", filepath.Join(dir, "data", "escape")); err != nil {
				t.Fatal(err)
			}
		}, []string{"non-regular"}},
		{"WrongBackend", func(t *testing.T, dir string) {
			rewriteManifest(t, dir, func(m *artifact.Manifest) { m.Backend = "bogus-backend" })
		}, []string{"backend"}},
		{"SchemaVersion", func(t *testing.T, dir string) {
			rewriteManifest(t, dir, func(m *artifact.Manifest) { m.SchemaVersion = 999 })
		}, []string{"schema_version"}},
		{"BackendVersion", func(t *testing.T, dir string) {
			rewriteManifest(t, dir, func(m *artifact.Manifest) { m.BackendVersion = "999" })
		}, []string{"999"}},
		{"CursorMismatch", func(t *testing.T, dir string) {
			rewriteManifest(t, dir, func(m *artifact.Manifest) { m.CursorHex = "00000000000003e7" })
		}, []string{"cursor"}},
		{"NoManifest", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, artifact.ManifestName))
		}, []string{"MANIFEST.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := exportFull(t, b)
			tt.damage(t, dir)
			dest := b.NewLoc(t)
			g, err := b.Import(dir, dest)
			if err == nil {
				g.Close()
				t.Fatal("Import accepted a damaged artifact")
			}
			if !errors.Is(err, artifact.ErrInvalid) || !containsAny(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrArtifactInvalid mentioning one of %q", err, tt.want)
			}
			if _, serr := os.Lstat(dest); !os.IsNotExist(serr) {
				t.Fatalf("refused import created %s", dest)
			}
			leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".slipstream-*"))
			if len(leftovers) != 0 {
				t.Fatalf("refused import left %q", leftovers)
			}
		})
	}
}

func containsAny(s string, subs []string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return strings.Contains(s, sub) })
}

func testImportNonEmptyDest(t *testing.T, b Backend) {
	dir, _ := exportFull(t, b)
	dest := filepath.Join(t.TempDir(), "dest")
	os.Mkdir(dest, 0o755)
	stray := filepath.Join(dest, "stray")
	os.WriteFile(stray, []byte("keep me"), 0o644)
	if g, err := b.Import(dir, dest); !errors.Is(err, artifact.ErrInvalid) {
		if g != nil {
			g.Close()
		}
		t.Fatalf("Import into a non-empty destination: %v", err)
	}
	if raw, err := os.ReadFile(stray); err != nil || string(raw) != "keep me" {
		t.Fatalf("stray file changed: %q, %v", raw, err)
	}
	g, err := b.Import(dir, b.NewLoc(t))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	expectState(t, g, kvcore.RevisionCursor(7), Expected)
}

func testExportNonEmptyDest(t *testing.T, b Backend) {
	f := open(t, b, b.NewLoc(t))
	foldIn(t, f, Stream)
	dest := t.TempDir()
	stray := filepath.Join(dest, "stray")
	os.WriteFile(stray, []byte("keep me"), 0o644)
	if _, err := f.Export(context.Background(), dest); !errors.Is(err, artifact.ErrInvalid) {
		t.Fatalf("Export into a non-empty destination: %v", err)
	}
	if raw, err := os.ReadFile(stray); err != nil || string(raw) != "keep me" {
		t.Fatalf("stray file changed: %q, %v", raw, err)
	}
}

func testExportEmpty(t *testing.T, b Backend) {
	f := open(t, b, b.NewLoc(t))
	dir := filepath.Join(t.TempDir(), "artifact")
	c, err := f.Export(context.Background(), dir)
	if err != nil || !c.IsNone() || readManifest(t, dir).CursorHex != "" {
		t.Fatalf("Export of an empty fold = %v, %v", c, err)
	}
	g, err := b.Import(dir, b.NewLoc(t))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	expectState(t, g, kvcore.Cursor{}, nil)
}

// crashBatches is the crash fixture: several batches (one empty) so that
// torn writes land in data records, cursor records and batch boundaries.
var crashBatches = [][]kvcore.Update{Stream[0:2], Stream[2:3], {}, Stream[3:5], Stream[5:7]}

func crashCursors() []kvcore.Cursor {
	return []kvcore.Cursor{kvcore.RevisionCursor(2), kvcore.RevisionCursor(3), kvcore.RevisionCursor(3), kvcore.RevisionCursor(5), kvcore.RevisionCursor(7)}
}

// prefixStates is the fold of each prefix of Stream: prefixStates[m] folds Stream[:m].
func prefixStates() [][]string {
	out := make([][]string, len(Stream)+1)
	for m := range out {
		state := map[string]string{}
		for _, u := range Stream[:m] {
			if u.IsRemoval() {
				delete(state, u.Key)
			} else {
				state[u.Key] = string(u.Value)
			}
		}
		for k, v := range state {
			out[m] = append(out[m], k+"="+v)
		}
		slices.Sort(out[m])
	}
	return out
}

// testCrashConsistency applies crashBatches, closes the fold and opens every
// crash state the backend enumerates: the recovered cursor must never name
// an update whose effect the recovered data lacks (the data must be the fold
// of a prefix of the stream that reaches at least the cursor), and folding
// the rest of the stream from that cursor must reach the expected state.
func testCrashConsistency(t *testing.T, b Backend) {
	loc := b.NewLoc(t)
	f := open(t, b, loc)
	for i, batch := range crashBatches {
		if err := f.Apply(context.Background(), batch, crashCursors()[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	states := prefixStates()
	seen, cursorsSeen := 0, map[kvcore.Cursor]bool{}
	for c := range b.Crashes(t, loc) {
		seen++
		g, err := c.Open()
		if err != nil {
			if c.MayRefuse {
				continue
			}
			t.Fatalf("%s: reopening failed: %v", c.Name, err)
		}
		got, cur := Dump(t, g, ""), g.Cursor()
		cursorsSeen[cur] = true
		covered := 0 // updates the cursor names
		if rev, ok := cur.Revision(); ok {
			covered = int(rev)
		}
		match := -1
		for m := covered; m < len(states); m++ {
			if slices.Equal(states[m], got) {
				match = m
				break
			}
		}
		if match < 0 {
			g.Close()
			t.Fatalf("%s: cursor %v names data the fold lacks: it holds %q", c.Name, cur, got)
		}
		// Resume: re-fold everything after the cursor.
		if rest := Stream[covered:]; len(rest) > 0 {
			if err := g.Apply(context.Background(), rest, kvcore.RevisionCursor(7)); err != nil {
				t.Fatalf("%s: resume: %v", c.Name, err)
			}
		}
		if got := Dump(t, g, ""); !slices.Equal(got, Expected) {
			t.Fatalf("%s: after resuming from %v the fold is %q", c.Name, cur, got)
		}
		g.Close()
	}
	if seen == 0 || len(cursorsSeen) < 3 {
		t.Fatalf("only %d crash states with %d distinct cursors were checked", seen, len(cursorsSeen))
	}
}
