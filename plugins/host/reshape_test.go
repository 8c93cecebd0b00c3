package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// tree writes files (path -> content; a content of "/" makes a directory,
// "->target" a symlink) below dir.
func tree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for _, p := range slices.Sorted(maps.Keys(files)) {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch c := files[p]; {
		case c == "/":
			err = os.Mkdir(full, 0o755)
		case strings.HasPrefix(c, "->"):
			err = os.Symlink(c[2:], full)
		default:
			err = os.WriteFile(full, []byte(c), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot describes everything below dir but staging files (path ->
// content, "/" for a directory, "->target" for a symlink), in tree's
// notation.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case strings.HasPrefix(d.Name(), abi.StagePrefix):
		case d.IsDir():
			got[rel] = "/"
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel] = "->" + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantTree(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	if got := snapshot(t, dir); !maps.Equal(got, want) {
		t.Fatalf("output holds\n %q\nwant\n %q", got, want)
	}
}

// step is one staging request of a reshape test.
type step struct {
	remove bool
	path   string
	data   string
}

func (st step) String() string {
	if st.remove {
		return "remove " + st.path
	}
	return "write " + st.path
}

func (st step) run(s *stage) (abi.Status, *refusal) {
	if st.remove {
		return s.remove("out", st.path)
	}
	return s.write("out", st.path, []byte(st.data), 0o644)
}

// orders returns steps in their order and reversed: a reshape works whether
// the call stages the removals first or last.
func orders(steps ...step) map[string][]step {
	rev := slices.Clone(steps)
	slices.Reverse(rev)
	return map[string][]step{"removals first": steps, "removals last": rev}
}

// TestReshapeFileIntoDirectory: a call that removes the file "a" and writes
// "a/b" (in either order) commits. It used to be refused ("a parent is not a
// directory"): the staging file could not be put beside "a/b" while the file
// "a" was there, the batch was delivered again forever, and the watch was
// stuck. The staging files now lie in the nearest existing directory, and
// the commit removes "a", creates the directories (mode 0o755 whatever the
// umask) and renames the files into place, then fsyncs every directory it
// changed, the one the staging files left included.
func TestReshapeFileIntoDirectory(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for name, steps := range orders(
		step{remove: true, path: "d/a"},
		step{path: "d/a/b", data: "b"},
		step{path: "d/a/x/c", data: "c"},
	) {
		t.Run(name, func(t *testing.T) {
			s, dir := newTestStage(t, Limits{})
			tree(t, dir, map[string]string{"d/a": "old", "d/keep": "k"})
			synced := recordDirSyncs(s)
			for _, st := range steps {
				mustStage(t)(st.run(s))
			}
			for _, f := range s.staged() {
				if !f.Remove && filepath.Dir(f.File) != filepath.Join(dir, "d") {
					t.Errorf("%s is staged as %s, not in the nearest existing directory", f.Path, f.File)
				}
			}
			wantTree(t, dir, map[string]string{"d": "/", "d/a": "old", "d/keep": "k"}) // staging files aside
			if err := s.settle(); err != nil {
				t.Fatal(err)
			}
			if err := s.commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			wantTree(t, dir, map[string]string{"d": "/", "d/keep": "k", "d/a": "/", "d/a/b": "b", "d/a/x": "/", "d/a/x/c": "c"})
			for _, d := range []string{"d/a", "d/a/x"} {
				if fi, _ := os.Stat(filepath.Join(dir, d)); fi.Mode().Perm() != dirMode {
					t.Errorf("%s has mode %v", d, fi.Mode().Perm())
				}
			}
			if got, want := synced(), []string{"d", "d/a", "d/a/x"}; !slices.Equal(got, want) {
				t.Errorf("fsynced %v, want %v", got, want)
			}
		})
	}
}

// TestReshapeDirectoryIntoFile: a write onto a directory commits when the
// call removes every file below it (in either order); the commit removes
// the emptied directories, empty ones included, and renames the file into
// place. Directories are never emptied by the host's own removals, so an
// empty directory (left by earlier calls, or created by this one for a write
// it then dropped) is replaced too: otherwise a key whose files were all
// removed could never become a file.
func TestReshapeDirectoryIntoFile(t *testing.T) {
	for name, steps := range orders(
		step{remove: true, path: "a/x"},
		step{remove: true, path: "a/sub/y"},
		step{remove: true, path: "a/link"},
		step{path: "a", data: "file a"},
		step{path: "empty", data: "file empty"},
	) {
		t.Run(name, func(t *testing.T) {
			s, dir := newTestStage(t, Limits{})
			tree(t, dir, map[string]string{
				"a/x": "x", "a/sub/y": "y", "a/sub/deeper/empty": "/", "a/link": "->../elsewhere",
				"elsewhere/z": "z", "empty": "/",
			})
			for _, st := range steps {
				mustStage(t)(st.run(s))
			}
			// A directory this call created, for a write it then dropped.
			mustStage(t)(s.write("out", "made/f", []byte("f"), 0))
			if st, ref := s.remove("out", "made/f"); st != abi.Unchanged || ref != nil {
				t.Fatalf("remove made/f: %v %v", st, ref)
			}
			mustStage(t)(s.write("out", "made", []byte("file made"), 0))
			if err := s.commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			wantTree(t, dir, map[string]string{"a": "file a", "empty": "file empty", "made": "file made", "elsewhere": "/", "elsewhere/z": "z"})
		})
	}
}

// TestReshapeNeedsItsRemovals: a write below a file, or onto a directory,
// that the call does not remove fails the call when the guest returns
// (settle), with nothing left behind; a path staged both as a file and as a
// directory stays refused at once, whatever the removals.
func TestReshapeNeedsItsRemovals(t *testing.T) {
	disk := map[string]string{"f": "f", "tofile": "->f", "d/x": "x", "d/y": "y", "e/link": "->../f"}
	tests := []struct {
		name  string
		steps []step
		err   string
	}{
		{"below a file it keeps", []step{{path: "f/new/b"}}, `write "f/new/b": "f" is not a directory, and this call does not remove it`},
		{"below a symlink to a file it keeps", []step{{path: "tofile/b"}}, `write "tofile/b": "tofile" is not a directory`},
		{"onto a directory holding a file it keeps", []step{{remove: true, path: "d/x"}, {path: "d"}}, `write "d": it is a directory holding "d/y", which this call does not remove`},
		{"onto a directory holding a symlink it keeps", []step{{path: "e"}}, `write "e": it is a directory holding "e/link"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newTestStage(t, Limits{})
			tree(t, dir, disk)
			before := snapshot(t, dir)
			for _, st := range tt.steps {
				mustStage(t)(st.run(s))
			}
			err := s.commit(context.Background())
			if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("commit: %v, want %q", err, tt.err)
			}
			wantTree(t, dir, before)
		})
	}
	t.Run("a file and a directory of the same name", func(t *testing.T) {
		for _, steps := range [][]step{
			{{remove: true, path: "f"}, {path: "f/b"}, {path: "f"}},
			{{remove: true, path: "f"}, {path: "f"}, {path: "f/b"}},
			{{remove: true, path: "d/x"}, {remove: true, path: "d/y"}, {path: "d"}, {path: "d/x"}},
		} {
			s, dir := newTestStage(t, Limits{})
			tree(t, dir, disk)
			before := snapshot(t, dir)
			for _, st := range steps[:len(steps)-1] {
				if _, ref := st.run(s); ref != nil {
					t.Fatal(ref.err)
				}
			}
			last := steps[len(steps)-1]
			if st, ref := last.run(s); st != abi.ErrInvalid || ref == nil || !errors.Is(ref.err, ErrDenied) {
				t.Fatalf("%v after %v: status %v, refusal %v", last, steps[:len(steps)-1], st, ref)
			}
			s.discard()
			wantTree(t, dir, before)
		}
	})
}

// TestReshapeSettleIsBounded: replacing a directory reads at most
// Limits.MaxFiles directories below it, however many it holds.
func TestReshapeSettleIsBounded(t *testing.T) {
	s, dir := newTestStage(t, Limits{MaxFiles: 4})
	for i := range 6 {
		tree(t, dir, map[string]string{fmt.Sprintf("a/d%d", i): "/"})
	}
	mustStage(t)(s.write("out", "a", []byte("a"), 0))
	if err := s.settle(); !errors.Is(err, ErrLimit) {
		t.Fatalf("settle: %v", err)
	}
}

// TestReshapeCommitFailureLeavesOldOrNew: whatever step of a reshaping
// commit fails, every file is either as before or as staged, what the
// commit did before the failure stays done, no staging file is left, and no
// directory the commit created stays behind empty (one could stand where a
// later call must write a file).
func TestReshapeCommitFailureLeavesOldOrNew(t *testing.T) {
	disk := map[string]string{"a": "old a", "d/x": "old x", "c": "old c"}
	steps := []step{
		{path: "a/b/f", data: "new f"}, // staged before the removal it needs
		{path: "m/f", data: "dropped"}, // creates the directory m, then
		{remove: true, path: "m/f"},    // is dropped, so that
		{path: "m", data: "new m"},     // m replaces the directory staging made
		{path: "c", data: "new c"},
		{remove: true, path: "a"},
		{remove: true, path: "d/x"},
		{path: "d", data: "new d"},
	}
	// Each path's acceptable states: as before or as staged; "" is absent.
	states := map[string][]string{
		"a": {"old a", "", "/"}, "a/b": {"", "/"}, "a/b/f": {"", "new f"}, "m": {"", "new m"},
		"c": {"old c", "new c"}, "d": {"/", "", "new d"}, "d/x": {"old x", ""},
	}
	const nsteps = 6 // 4 renames, 2 removals
	for fail := 1; fail <= nsteps+1; fail++ {
		s, dir := newTestStage(t, Limits{})
		tree(t, dir, disk)
		for _, st := range steps {
			if _, ref := st.run(s); ref != nil {
				t.Fatal(ref.err)
			}
		}
		calls := 0
		done := map[string]string{} // what the commit did: path -> new state
		injected := errors.New("injected: disk on fire")
		s.unlink = func(r *os.Root, name string) error {
			if calls++; calls == fail {
				return injected
			}
			done[name] = ""
			return r.Remove(name)
		}
		s.rename = func(r *os.Root, from, to string) error {
			if calls++; calls == fail {
				return injected
			}
			b, _ := r.ReadFile(from)
			done[to] = string(b)
			return r.Rename(from, to)
		}
		err := s.commit(context.Background())
		if fail > nsteps {
			if err != nil || calls != nsteps {
				t.Fatalf("the commit took %d steps, want %d: %v", calls, nsteps, err)
			}
			wantTree(t, dir, map[string]string{"a": "/", "a/b": "/", "a/b/f": "new f", "m": "new m", "c": "new c", "d": "new d"})
			return
		}
		if !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("step %d: %v", fail, err)
		}
		got := snapshot(t, dir)
		for p, c := range got {
			if !slices.Contains(states[p], c) {
				t.Errorf("step %d failed: %s is %q; output %q", fail, p, c, got)
			}
		}
		for p, ok := range states {
			if _, there := got[p]; !there && !slices.Contains(ok, "") {
				t.Errorf("step %d failed: %s is gone; output %q", fail, p, got)
			}
		}
		for p, c := range done {
			if got[p] != c && !(c == "" && got[p] == "/") { // a removed file may have become a directory
				t.Errorf("step %d failed: %s is %q, but the commit had made it %q", fail, p, got[p], c)
			}
		}
		if (got["a/b"] == "/") != (got["a/b/f"] == "new f") || (got["a"] == "/") != (got["a/b"] == "/") {
			t.Errorf("step %d failed: created directories left behind: %q", fail, got)
		}
		noStaged(t, dir)
	}
}

// TestReshapeFollowsNoSymlink: a symlink the call removes is no way into a
// directory (a write below it waits for the commit to create a real one),
// and a symlink planted where the commit creates a directory fails the
// write instead of being followed.
func TestReshapeFollowsNoSymlink(t *testing.T) {
	t.Run("removed by the call", func(t *testing.T) {
		s, dir := newTestStage(t, Limits{})
		outside := t.TempDir()
		tree(t, dir, map[string]string{"inside": "/", "in": "->inside", "out": "->" + outside})
		for _, st := range []step{{remove: true, path: "in"}, {path: "in/b", data: "b"}, {remove: true, path: "out"}, {path: "out/b", data: "b"}} {
			mustStage(t)(st.run(s))
		}
		if err := s.commit(context.Background()); err != nil {
			t.Fatal(err)
		}
		wantTree(t, dir, map[string]string{"inside": "/", "in": "/", "in/b": "b", "out": "/", "out/b": "b"})
		wantTree(t, outside, map[string]string{})
	})
	t.Run("planted at commit", func(t *testing.T) {
		s, dir := newTestStage(t, Limits{})
		outside := t.TempDir()
		tree(t, dir, map[string]string{"a": "old"})
		mustStage(t)(s.remove("out", "a"))
		mustStage(t)(s.write("out", "a/x/b", []byte("b"), 0))
		s.unlink = func(r *os.Root, name string) error {
			if err := r.Remove(name); err != nil {
				return err
			}
			return os.Symlink(outside, filepath.Join(dir, name)) // between the removal and the mkdir
		}
		err := s.commit(context.Background())
		if !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), `create the directory "a"`) {
			t.Fatalf("commit: %v", err)
		}
		wantTree(t, outside, map[string]string{})
		wantTree(t, dir, map[string]string{"a": "->" + outside})
	})
}

// TestSweepStagedFindsReshapeLeftovers: a staging file put in the nearest
// existing directory (its target's does not exist yet) is still found by
// SweepStaged after a crash.
func TestSweepStagedFindsReshapeLeftovers(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	tree(t, dir, map[string]string{"sub/a": "old"})
	mustStage(t)(s.remove("out", "sub/a"))
	mustStage(t)(s.write("out", "sub/a/b/c", []byte("c"), 0))
	staged := s.staged()[1].File
	removed, err := SweepStaged(dir)
	if err != nil || !slices.Equal(removed, []string{staged}) || filepath.Dir(staged) != filepath.Join(dir, "sub") {
		t.Fatalf("swept %v (%v), staged %s", removed, err, staged)
	}
}
