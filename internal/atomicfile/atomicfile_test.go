package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, tc := range []struct {
		data string
		perm os.FileMode
	}{{"first", 0o600}, {"second, longer", 0o644}, {"", 0o640}} {
		if err := WriteFile(p, []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != tc.data {
			t.Fatalf("content = %q, %v; want %q", b, err, tc.data)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != tc.perm {
			t.Errorf("mode = %v, want %v", fi.Mode().Perm(), tc.perm)
		}
		if names := dirNames(t, dir); len(names) != 1 || names[0] != "state.json" {
			t.Errorf("directory holds %q, want only state.json (no temporary file)", names)
		}
	}
}

// A failed replacement leaves the target alone and no temporary file.
func TestWriteFileFailureLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	// The rename fails: the target is a non-empty directory.
	target := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(target, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(target, []byte("new"), 0o644); err == nil {
		t.Fatal("replacing a non-empty directory succeeded")
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "target" {
		t.Errorf("directory holds %q after the failure, want only target", names)
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Errorf("the target changed: %v %v", fi, err)
	}

	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o644); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("writing into a missing directory: %v, want ErrNotExist", err)
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("SyncDir of a missing directory: %v", err)
	}
}

func TestQuarantineMovesAsideWithoutOverwriting(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fold.snap")
	at := time.Date(2026, 12, 5, 1, 2, 3, 0, time.FixedZone("CET", 3600))
	var moved []string
	for i, content := range []string{"one", "two", "three"} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		dst, err := Quarantine(p, at)
		if err != nil {
			t.Fatal(err)
		}
		want := filepath.Join(dir, "fold.snap.quarantined-20261205T000203Z")
		if i > 0 {
			want += []string{"", "-2", "-3"}[i]
		}
		if dst != want {
			t.Errorf("moved to %s, want %s", dst, want)
		}
		if b, _ := os.ReadFile(dst); string(b) != content {
			t.Errorf("%s holds %q, want %q", dst, b, content)
		}
		moved = append(moved, dst)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the damaged file is still in place (%v)", err)
	}
	if len(dirNames(t, dir)) != len(moved) {
		t.Errorf("directory holds %q", dirNames(t, dir))
	}
	// Directories move too (an on-disk fold).
	d := filepath.Join(dir, "fold.pebble")
	if err := os.MkdirAll(filepath.Join(d, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if dst, err := Quarantine(d, at); err != nil {
		t.Fatal(err)
	} else if fi, err := os.Stat(filepath.Join(dst, "x")); err != nil || !fi.IsDir() {
		t.Errorf("the directory's content did not move: %v", err)
	}
	if _, err := Quarantine(filepath.Join(dir, "missing"), at); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("quarantining a missing file: %v", err)
	}
}

func TestMkdirAllReportsWhatItCreated(t *testing.T) {
	dir := t.TempDir()
	deep := filepath.Join(dir, "a", "b", "c")
	for i, want := range []bool{true, false} {
		created, err := MkdirAll(deep, 0o755)
		if err != nil || created != want {
			t.Fatalf("call %d: created %v, %v; want %v", i+1, created, err, want)
		}
		if fi, err := os.Stat(deep); err != nil || !fi.IsDir() {
			t.Fatalf("call %d: %s is not a directory (%v)", i+1, deep, err)
		}
	}
	// A file where the directory should be is an error, not replaced.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if created, err := MkdirAll(file, 0o755); err == nil || created {
		t.Fatalf("over a file: created %v, %v; want an error", created, err)
	}
	if created, err := MkdirAll(filepath.Join(file, "below"), 0o755); err == nil || created {
		t.Fatalf("below a file: created %v, %v; want an error", created, err)
	}
}
