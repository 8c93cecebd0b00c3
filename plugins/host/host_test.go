package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestApplyStagesAndCommits(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	res, err := f.apply("write=out:a.conf:alpha", "write=out:sub/dir/b.conf:beta:600", "hook=reload", "hook=reload")
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Hooks(); !slices.Equal(got, []string{"reload"}) {
		t.Fatalf("hooks %v", got)
	}
	staged := res.Staged()
	if len(staged) != 2 || !res.Changed() {
		t.Fatalf("staged %+v", staged)
	}
	for _, s := range staged {
		if filepath.Dir(s.File) != filepath.Dir(s.Target) || !strings.HasPrefix(filepath.Base(s.File), ".slipstream-") {
			t.Errorf("staged file %s is not a hidden file beside %s", s.File, s.Target)
		}
		if _, err := os.Stat(s.Target); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("target %s exists before commit", s.Target)
		}
	}
	if b, err := os.ReadFile(staged[0].File); err != nil || string(b) != "alpha" {
		t.Fatalf("staged content %q, %v", b, err)
	}
	if staged[0].SHA256 != sha256.Sum256([]byte("alpha")) || staged[1].SHA256 != sha256.Sum256([]byte("beta")) {
		t.Errorf("staged digests %x %x, want those of alpha and beta", staged[0].SHA256, staged[1].SHA256)
	}
	if err := res.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.read("a.conf"); got != "alpha" {
		t.Fatalf("a.conf = %q", got)
	}
	fi, err := os.Stat(filepath.Join(f.out, "sub/dir/b.conf"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("b.conf: %v %v", fi, err)
	}
	if fi, _ := os.Stat(filepath.Join(f.out, "a.conf")); fi.Mode().Perm() != DefaultMode {
		t.Fatalf("a.conf mode %v", fi.Mode())
	}
	noStaged(t, f.out)
	if err := res.Commit(context.Background()); !errors.Is(err, ErrDone) {
		t.Fatalf("second commit: %v", err)
	}
}

func TestUnchangedWritesStageNothing(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	f.mustCommit("write=out:a.conf:same")
	res, err := f.apply("write=out:a.conf:same")
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() || f.logs.count("write a.conf changed=false") != 1 {
		t.Fatalf("staged %v, logs %v", res.Staged(), f.logs.lines())
	}
	res.Discard()
	// A different mode is a change.
	res, err = f.apply("write=out:a.conf:same:600")
	if err != nil || !res.Changed() {
		t.Fatalf("mode change: %v %v", res, err)
	}
	res.Discard()
}

func TestLastStagedChangeWins(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	f.mustCommit("write=out:keep:1", "write=out:gone:1")
	res := f.mustCommit(
		"write=out:keep:2", "write=out:keep:3", // rewritten twice
		"write=out:gone:2", "remove=out:gone", // written then removed
		"remove=out:new", "write=out:new:4", // removed then written
	)
	if got, _ := f.read("keep"); got != "3" {
		t.Errorf("keep = %q", got)
	}
	if _, ok := f.read("gone"); ok {
		t.Error("gone still exists")
	}
	if got, _ := f.read("new"); got != "4" {
		t.Errorf("new = %q", got)
	}
	if n := len(res.Staged()); n != 0 { // committed results list nothing
		t.Errorf("staged after commit: %d", n)
	}
	noStaged(t, f.out)
}

func TestDiscardRemovesEverything(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	f.mustCommit("write=out:a:old")
	res, err := f.apply("write=out:a:new", "write=out:x/y/z:deep", "remove=out:a")
	if err != nil {
		t.Fatal(err)
	}
	res.Discard()
	res.Discard()
	if got, _ := f.read("a"); got != "old" {
		t.Fatalf("a = %q", got)
	}
	if _, err := os.Stat(filepath.Join(f.out, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("directory created by staging survived discard: %v", err)
	}
	noStaged(t, f.out)
	if err := res.Commit(context.Background()); !errors.Is(err, ErrDone) {
		t.Fatalf("commit after discard: %v", err)
	}
}

func TestPluginFailureDiscards(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	_, err := f.apply("write=out:a:1", "fail=bad input in key x")
	var ce *CallError
	if !errors.As(err, &ce) || !errors.Is(err, ErrPluginFailed) || ce.Message != "bad input in key x" || ce.Recycled {
		t.Fatalf("err = %v", err)
	}
	if _, ok := f.read("a"); ok {
		t.Fatal("a failed call wrote a")
	}
	noStaged(t, f.out)
	f.mustCommit("write=out:a:2") // the same instance keeps working
	if st := f.inst.Stats(); st.Recycled != 0 || st.Instantiated != 1 || st.Failures != 1 || st.Calls != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPanicIsAFailureNotATrap(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	_, err := f.apply("panic=oh no")
	if !errors.Is(err, ErrPluginFailed) || !strings.Contains(err.Error(), "panic: oh no") {
		t.Fatalf("err = %v", err)
	}
	if st := f.inst.Stats(); st.Recycled != 0 {
		t.Fatalf("a recovered panic recycled the instance: %+v", st)
	}
}

func TestGuestReadsViewAndConfig(t *testing.T) {
	f := newFixture(t, PluginConfig{Config: map[string]string{"color": "blue", "": "the empty key"}})
	f.view.Put(Entry{Key: "k", Value: []byte("v"), Revision: 3})
	f.mustCommit("get=k", "get=missing", "config=color", "config=size", "configkeys=")
	for _, want := range []string{`get k = "v" true <nil>`, `get missing = "" false <nil>`, `config color = "blue" true`, `config size = "" false`, `config keys ["" "color"] <nil>`} {
		if f.logs.count(want) != 1 {
			t.Errorf("no log %q in %v", want, f.logs.lines())
		}
	}
}

func TestRenderScansAViewLargerThanAPage(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	// ~3 MiB of values: many 256 KiB pages and several 64 KiB guest buffers.
	for i := range 3000 {
		e := Entry{Key: "data/" + strings.Repeat("k", i%40) + string(rune('a'+i%26)) + itoa(i), Value: []byte(strings.Repeat("v", 1000+i%100)), Revision: uint64(i + 1)}
		f.view.Put(e)
	}
	f.view.Put(Entry{Key: "data/huge", Value: make([]byte, 600<<10)}) // bigger than a page
	f.view.Put(Entry{Key: "render/scan", Value: []byte("out:data/")})
	res, err := f.inst.Render(context.Background(), Cursor{Revision: 9}, f.view)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := f.read("scan")
	want := expectedScan(t, f.view, "data/")
	if got != want {
		t.Fatalf("guest scan = %q, want %q", got, want)
	}
}

func TestOutputList(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	for _, p := range []string{"b.conf", "a.conf", "sub/c.conf"} {
		os.MkdirAll(filepath.Join(f.out, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(f.out, p), []byte("x"), 0o644)
	}
	os.WriteFile(filepath.Join(f.out, ".slipstream-leftover.tmp"), nil, 0o600)
	os.Symlink("a.conf", filepath.Join(f.out, "link"))
	f.mustCommit("list=out:")
	got, _ := f.read("listing")
	if got != "a.conf/1\nb.conf/1\nlink/3\nsub/2" {
		t.Fatalf("listing %q", got)
	}
	f.mustCommit("list=out:sub")
	if got, _ := f.read("listing"); got != "c.conf/1" {
		t.Fatalf("listing of sub %q", got)
	}
}

func TestGuestStdoutAndLogGoToTheLogger(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	f.mustCommit("logflood=3")
	lines := f.logs.lines()
	for _, want := range []string{"INFO stdout line 0", "INFO log line 2", "INFO partial line without newline"} {
		if !slices.Contains(lines, want) {
			t.Errorf("missing %q in %v", want, lines)
		}
	}
	if f.logs.count("WARN "+strings.Repeat("x", 4096)) != 1 {
		t.Errorf("the 10000-byte stderr line was not truncated to one 4096-byte line")
	}
}

func TestSHA256Pin(t *testing.T) {
	wasm := guestWasm(t)
	ctx := context.Background()
	p, err := testEngine(t).Load(ctx, wasm, PluginConfig{Name: "pinned", SHA256: strings.ToUpper(sha256hex(wasm))})
	if err != nil {
		t.Fatal(err)
	}
	p.Close(ctx)
	_, err = testEngine(t).Load(ctx, wasm, PluginConfig{Name: "pinned", SHA256: strings.Repeat("0", 64)})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v", err)
	}
	// Bytes that fail their pin never reach the compiler: nothing enters a
	// fresh compile cache.
	cache := t.TempDir()
	e, err := New(ctx, Config{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	if _, err := e.Load(ctx, wasm, PluginConfig{Name: "pinned", SHA256: strings.Repeat("0", 64)}); !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v", err)
	}
	var compiled []string
	filepath.WalkDir(cache, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			compiled = append(compiled, path)
		}
		return nil
	})
	if len(compiled) != 0 {
		t.Errorf("a module that failed its pin left %q in the compile cache", compiled)
	}
}

func TestGuestSeesNoEnvironmentArgsOrFiles(t *testing.T) {
	t.Setenv("SLIPSTREAM_SECRET", "must not leak")
	f := newFixture(t, PluginConfig{})
	f.mustCommit("sandbox=out")
	got, _ := f.read("sandbox")
	t.Logf("guest view of the host: %s", got)
	if !strings.HasPrefix(got, "env=0 args=0 read=open /etc/hostname: ") || strings.Contains(got, "<nil>") {
		t.Fatalf("the guest saw %q", got)
	}
	if _, err := os.Stat("/tmp/slipstream-escape"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the guest created a host file")
	}
}

// TestFileAndDirectoryInOneCall: staging "a" and "a/b" in one call fails the
// call with a clear error and leaves nothing behind, so the plugin recovers
// once its input no longer asks for both.
func TestFileAndDirectoryInOneCall(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	_, err := f.apply("write=out:a:1", "write=out:a/b:2")
	wantCallError(t, err, ErrDenied, false, `write "a/b": its directory "a" was staged as a file in this call`)
	if ents, _ := os.ReadDir(f.out); len(ents) != 0 {
		t.Fatalf("the failed call left %d entries in the output", len(ents))
	}
	f.mustCommit("write=out:a:1")
	if got, _ := f.read("a"); got != "1" {
		t.Fatalf("a = %q", got)
	}
}

// TestReshapeInOneCall: through a real guest, one call turns the file "a"
// into a directory (remove "a", write "a/b") and a later one turns it back
// (write "a" first, then remove "a/b"); a write below a file the call keeps
// fails the call when the guest returns, naming the file, and leaves the
// output as it was.
func TestReshapeInOneCall(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	f.mustCommit("write=out:a:1")
	f.mustCommit("remove=out:a", "write=out:a/b:2")
	if got, _ := f.read("a/b"); got != "2" {
		t.Fatalf("a/b = %q", got)
	}
	f.mustCommit("write=out:a:3", "remove=out:a/b")
	if got, _ := f.read("a"); got != "3" {
		t.Fatalf("a = %q", got)
	}
	_, err := f.apply("write=out:a/c:4")
	wantCallError(t, err, ErrDenied, false, `write "a/c": "a" is not a directory, and this call does not remove it`)
	if ents, _ := os.ReadDir(f.out); len(ents) != 1 || ents[0].Name() != "a" || !ents[0].Type().IsRegular() {
		t.Fatalf("the output holds %v after a failed call", ents)
	}
	if got, _ := f.read("a"); got != "3" {
		t.Fatalf("a = %q after a failed call", got)
	}
}
