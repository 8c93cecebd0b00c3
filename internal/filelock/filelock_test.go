package filelock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func openFile(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Two opens of one file exclude each other, in one process too, and closing
// the holder releases the lock.
func TestTryLockExcludesOtherOpens(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	a, b := openFile(t, p), openFile(t, p)
	if err := TryLock(a); err != nil {
		t.Fatal(err)
	}
	if err := TryLock(b); !errors.Is(err, ErrHeld) {
		t.Fatalf("second lock: %v, want ErrHeld", err)
	}
	a.Close()
	if err := TryLock(b); err != nil {
		t.Fatalf("lock after the holder closed: %v", err)
	}
}

// A directory can be locked as well (import and export stages are).
func TestTryLockDirectory(t *testing.T) {
	dir := t.TempDir()
	a, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := TryLock(a); err != nil {
		t.Fatal(err)
	}
	if err := TryLock(b); !errors.Is(err, ErrHeld) {
		t.Fatalf("second lock: %v, want ErrHeld", err)
	}
}

// Create makes the lock file with its mode, locks it, and a second Create
// finds it held until the first is closed; a symlink at the path is not
// followed.
func TestCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lock")
	a, err := Create(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file %v, mode %v; want 0600", err, fi.Mode())
	}
	if _, err := Create(p, 0o600); !errors.Is(err, ErrHeld) {
		t.Fatalf("second Create: %v, want ErrHeld", err)
	}
	a.Close()
	b, err := Create(p, 0o600)
	if err != nil {
		t.Fatalf("Create after the holder closed: %v", err)
	}
	b.Close()

	target := filepath.Join(dir, "target")
	if err := os.Symlink(target, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if f, err := Create(filepath.Join(dir, "link"), 0o600); err == nil {
		f.Close()
		t.Error("Create followed a symlink")
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the symlink's target was created: %v", err)
	}
}
