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
	"syscall"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/rootonly"
	"github.com/slipstreamkv/slipstream/plugins/abi"
)

func newTestStage(t *testing.T, limits Limits) (*stage, string) {
	t.Helper()
	dir := t.TempDir()
	s := newStage(map[string]Output{"out": {Dir: dir, Mode: 0o640}}, limits.withDefaults(), false)
	t.Cleanup(s.discard)
	return s, dir
}

// mustStage returns a checker for a staging call's results: staged (OK) and
// not refused.
func mustStage(t *testing.T) func(abi.Status, *refusal) {
	t.Helper()
	return func(st abi.Status, ref *refusal) {
		t.Helper()
		if ref != nil {
			t.Fatal(ref.err)
		}
		if st != abi.OK {
			t.Fatalf("status %v", st)
		}
	}
}

func TestStagedFileHasFinalModeBeforeCommit(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	mustStage(t)(s.write("out", "a/b.conf", []byte("x"), 0))
	mustStage(t)(s.write("out", "c.conf", []byte("y"), 0o600))
	for _, f := range s.staged() {
		fi, err := os.Stat(f.File)
		if err != nil {
			t.Fatal(err)
		}
		want := fs.FileMode(0o640)
		if f.Path == "c.conf" {
			want = 0o600
		}
		if fi.Mode().Perm() != want {
			t.Errorf("staged %s has mode %v before commit, want %v", f.Path, fi.Mode(), want)
		}
		if filepath.Dir(f.File) != filepath.Dir(f.Target) || f.Target != filepath.Join(dir, f.Path) {
			t.Errorf("staged %+v", f)
		}
	}
}

func TestStageOwner(t *testing.T) {
	rootonly.Require(t, "changing a file's owner")
	dir := t.TempDir()
	owner := &Owner{UID: 4321, GID: 8765}
	s := newStage(map[string]Output{"out": {Dir: dir, Mode: 0o644, Owner: owner}}, Limits{}.withDefaults(), false)
	mustStage(t)(s.write("out", "d/f", []byte("x"), 0))
	ownerOf := func(p string) (uint32, uint32) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return st.Uid, st.Gid
	}
	staged := s.staged()[0]
	if u, g := ownerOf(staged.File); u != 4321 || g != 8765 {
		t.Fatalf("staged file owned by %d:%d before commit", u, g)
	}
	if err := s.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if u, g := ownerOf(filepath.Join(dir, "d/f")); u != 4321 || g != 8765 {
		t.Fatalf("committed file owned by %d:%d", u, g)
	}
	if u, g := ownerOf(filepath.Join(dir, "d")); u != 4321 || g != 8765 {
		t.Fatalf("created directory owned by %d:%d", u, g)
	}
	// Same content, mode and owner: unchanged. Another owner: a change.
	s2 := newStage(map[string]Output{"out": {Dir: dir, Mode: 0o644, Owner: owner}}, Limits{}.withDefaults(), false)
	if st, ref := s2.write("out", "d/f", []byte("x"), 0); st != abi.Unchanged || ref != nil {
		t.Fatalf("rewrite: %v %v", st, ref)
	}
	s3 := newStage(map[string]Output{"out": {Dir: dir, Mode: 0o644, Owner: &Owner{UID: 1, GID: 1}}}, Limits{}.withDefaults(), false)
	defer s3.discard()
	mustStage(t)(s3.write("out", "d/f", []byte("x"), 0))
}

// A write that finds the file as written stages nothing and is reported
// kept, with its digest and stat, unless a later op of the call on the same
// path stages something or removes it.
func TestStageKeptFiles(t *testing.T) {
	dir := t.TempDir()
	s := newStage(map[string]Output{"out": {Dir: dir, Mode: 0o640}}, Limits{}.withDefaults(), true)
	t.Cleanup(s.discard)
	for _, name := range []string{"same", "rewritten", "removed"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"same", "rewritten", "removed"} {
		if st, ref := s.write("out", name, []byte("x"), 0); st != abi.Unchanged || ref != nil {
			t.Fatalf("write %s as it is: %v %v", name, st, ref)
		}
	}
	mustStage(t)(s.write("out", "rewritten", []byte("y"), 0))
	mustStage(t)(s.remove("out", "removed"))
	kept := s.keptFiles()
	if len(kept) != 1 || kept[0].Output != "out" || kept[0].Path != "same" || kept[0].Target != filepath.Join(dir, "same") {
		t.Fatalf("kept %+v, want only out/same", kept)
	}
	if kept[0].SHA256 != sha256.Sum256([]byte("x")) || kept[0].Info == nil || kept[0].Info.Size() != 1 {
		t.Fatalf("kept %+v: wrong digest or stat", kept[0])
	}

	// Unasked for, none are kept.
	s2 := newStage(map[string]Output{"out": {Dir: dir, Mode: 0o640}}, Limits{}.withDefaults(), false)
	defer s2.discard()
	if st, ref := s2.write("out", "same", []byte("x"), 0); st != abi.Unchanged || ref != nil {
		t.Fatalf("write same as it is: %v %v", st, ref)
	}
	if kept := s2.keptFiles(); len(kept) != 0 {
		t.Fatalf("kept %+v without ReportKept", kept)
	}
}

func TestStageRefusals(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "afile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		do       func() (abi.Status, *refusal)
		status   abi.Status
		sentinel error
	}{
		{"remove a directory", func() (abi.Status, *refusal) { return s.remove("out", "adir") }, abi.ErrInvalid, ErrDenied},
		{"undeclared output", func() (abi.Status, *refusal) { return s.remove("nope", "x") }, abi.ErrDenied, ErrDenied},
		{"empty path", func() (abi.Status, *refusal) { return s.write("out", "", nil, 0) }, abi.ErrInvalid, ErrDenied},
		{"file type bits in mode", func() (abi.Status, *refusal) { return s.write("out", "x", nil, uint32(fs.ModeDir|0o755)) }, abi.ErrInvalid, ErrDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ref := tt.do()
			if st != tt.status || ref == nil || !errors.Is(ref.err, tt.sentinel) {
				t.Fatalf("status %v, refusal %v", st, ref.err)
			}
		})
	}
	for _, p := range []string{"never-existed", "afile/below-a-file"} {
		if st, ref := s.remove("out", p); st != abi.Unchanged || ref != nil {
			t.Fatalf("removing the missing file %s: %v %v", p, st, ref)
		}
	}
}

func TestMissingOutputDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	s := newStage(map[string]Output{"out": {Dir: dir}}, Limits{}.withDefaults(), false)
	st, ref := s.write("out", "f", []byte("x"), 0)
	if st != abi.ErrIO || ref == nil || !errors.Is(ref.err, ErrIO) {
		t.Fatalf("status %v, refusal %+v", st, ref)
	}
}

func TestSweepStagedRemovesCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	for _, p := range []string{".slipstream-aa.tmp", "sub/.slipstream-bb.tmp", "keep.conf", "sub/.slipstream-notes", ".slipstream-dir.tmp/x"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, ".slipstream-cc.tmp"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	removed, err := SweepStaged(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, ".slipstream-aa.tmp"), filepath.Join(dir, "sub/.slipstream-bb.tmp")}
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, p := range []string{filepath.Join(dir, "keep.conf"), filepath.Join(dir, "sub/.slipstream-notes"), filepath.Join(outside, ".slipstream-cc.tmp")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if removed, err := SweepStaged(filepath.Join(dir, "missing")); err != nil || len(removed) != 0 {
		t.Fatalf("missing dir: %v %v", removed, err)
	}
}

// TestStageDepthLimit: a path deeper than abi.MaxPathDepth is refused before
// anything is created (one stage_write of a 2000-level path used to take ten
// seconds in one host call, past any timeout); one at the limit is staged,
// through symlinked directories that stay inside the output too.
func TestStageDepthLimit(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	deepest := strings.Repeat("d/", abi.MaxPathDepth-1) + "f"
	st, ref := s.write("out", "x/"+deepest, []byte("x"), 0)
	if st != abi.ErrInvalid || ref == nil || !errors.Is(ref.err, ErrDenied) {
		t.Fatalf("a path of %d components: status %v, refusal %v", abi.MaxPathDepth+1, st, ref)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a refused path created %d entries", len(ents))
	}
	mustStage(t)(s.write("out", deepest, []byte("x"), 0))

	// "a/up" leads back to "real" through the output's root: a relative
	// symlink that leaves "a" but not the output.
	for _, d := range []string{"a", "real/b"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../real", filepath.Join(dir, "a/up")); err != nil {
		t.Fatal(err)
	}
	mustStage(t)(s.write("out", "a/up/b/new/deeper/f", []byte("y"), 0))
	if err := s.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "real/b/new/deeper/f")); err != nil || string(b) != "y" {
		t.Fatalf("write through a/up: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(deepest))); err != nil || string(b) != "x" {
		t.Fatalf("write at the depth limit: %q %v", b, err)
	}
}

// TestStageRefusesFileDirectoryConflicts: within one call a path cannot be
// both a staged file and a directory of another staged file. Before the
// check, "a" then "a/b" staged fine, the commit failed renaming onto the
// directory "a", and that directory stayed: every later write of "a"
// failed with "target is a directory", wedging the plugin for good.
func TestStageRefusesFileDirectoryConflicts(t *testing.T) {
	tests := []struct {
		name       string
		first, end string
	}{
		{"file, then a file below it", "a", "a/b"},
		{"file, then a file deeper below it", "a", "a/b/c"},
		{"file, then its directory as a file", "a/b", "a"},
		{"deep file, then a directory of it as a file", "a/b/c", "a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newTestStage(t, Limits{})
			mustStage(t)(s.write("out", tt.first, []byte("1"), 0))
			st, ref := s.write("out", tt.end, []byte("2"), 0)
			if st != abi.ErrInvalid || ref == nil || !errors.Is(ref.err, ErrDenied) {
				t.Fatalf("staging %q after %q: status %v, refusal %v", tt.end, tt.first, st, ref)
			}
			t.Log(ref.err)
			s.discard()
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Fatalf("the output holds %d entries after a discard", len(ents))
			}
		})
	}
	t.Run("no conflict", func(t *testing.T) {
		s, dir := newTestStage(t, Limits{})
		mustStage(t)(s.write("out", "a", []byte("1"), 0))
		mustStage(t)(s.write("out", "ab/c", []byte("2"), 0))
		mustStage(t)(s.write("out", "a.d/c", []byte("3"), 0))
		mustStage(t)(s.write("out", "x", []byte("4"), 0))
		if err := os.WriteFile(filepath.Join(dir, "x"), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		// A removal supersedes the staged file "x", which then no
		// longer stands in the way of "x/y": the commit removes the file
		// x and creates the directory.
		mustStage(t)(s.remove("out", "x"))
		mustStage(t)(s.write("out", "x/y", nil, 0))
		if err := s.commit(context.Background()); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "x")); err != nil || !fi.IsDir() {
			t.Fatalf("x: %v %v", fi, err)
		}
	})
}

// TestStagedDirectoriesHaveTheDocumentedMode: directories staging creates
// are 0o755 (ABI.md) whatever the agent's umask; they used to get 0o755
// minus the umask (0o700 under umask 077).
func TestStagedDirectoriesHaveTheDocumentedMode(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	s, dir := newTestStage(t, Limits{})
	mustStage(t)(s.write("out", "d/e/f", []byte("x"), 0))
	for _, d := range []string{"d", "d/e"} {
		fi, err := os.Stat(filepath.Join(dir, d))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s was created with mode %v under umask 077", d, fi.Mode().Perm())
		}
	}
}

// TestSupersedeKeepsStagingOrder: the last write of a path wins and takes
// its place at the end of the staging order, and a guest rewriting one path
// over and over does not grow the stage.
func TestSupersedeKeepsStagingOrder(t *testing.T) {
	s, dir := newTestStage(t, Limits{MaxFiles: 3})
	mustStage(t)(s.write("out", "a", []byte("a1"), 0))
	mustStage(t)(s.write("out", "b", []byte("b1"), 0))
	for i := range 1000 {
		mustStage(t)(s.write("out", "a", []byte("a"+itoa(i+2)), 0))
	}
	mustStage(t)(s.write("out", "c", []byte("c1"), 0))
	if len(s.ops) > 8 {
		t.Errorf("%d ops slots for 3 staged files", len(s.ops))
	}
	var got []string
	for _, f := range s.staged() {
		got = append(got, f.Path)
	}
	if want := []string{"b", "a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("staged %v, want %v", got, want)
	}
	if err := s.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "a1001" {
		t.Fatalf("a = %q", b)
	}
	noStaged(t, dir)
}

// TestSameContent compares files read in chunks with the data to write:
// equal, shorter, longer, or differing in the first or the last byte, on
// both sides of a chunk boundary.
func TestSameContent(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 10_000) // 160,000 bytes: several chunks
	for _, c := range []struct {
		file, data string
		want       bool
	}{
		{"", "", true},
		{"a", "a", true},
		{big, big, true},
		{"", "a", false},
		{"a", "", false},
		{big[:len(big)-1], big, false},
		{big, big[:len(big)-1], false},
		{big[:65536], big[:65537], false},
		{big[:65537], big[:65536], false},
		{"x" + big[1:], big, false},
		{big[:len(big)-1] + "x", big, false},
	} {
		got, err := sameContent(strings.NewReader(c.file), []byte(c.data))
		if err != nil || got != c.want {
			t.Errorf("file of %d bytes, data of %d: %v, %v; want %v", len(c.file), len(c.data), got, err, c.want)
		}
	}
}
