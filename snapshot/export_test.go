package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// exported writes an artifact of a small fold and returns its directory.
func exported(t *testing.T) string {
	t.Helper()
	l := openLog(t, newPath(t), Options{})
	apply(t, l, cur(2), put("a", "1", 1), put("b", "2", 2))
	dir := filepath.Join(t.TempDir(), "artifact")
	if _, err := l.Export(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func noStages(t *testing.T, parent string) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join(parent, ".slipstream-*")); len(m) != 0 {
		t.Fatalf("stages left behind: %q", m)
	}
}

// A file that appears at the destination after Import checked it is
// refused, never replaced (a rename would have replaced it).
func TestImportNeverReplacesADestinationThatAppears(t *testing.T) {
	dir := exported(t)
	dest := newPath(t)
	fsy := osFS()
	fsy.link = func(from, to string) error {
		if err := os.WriteFile(to, []byte("someone else's"), 0o644); err != nil {
			return err
		}
		return os.Link(from, to)
	}
	if l, err := fsy.importLog(dir, dest, Options{}); !errors.Is(err, ErrArtifactInvalid) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("Import onto a file that appeared: %v, want ErrArtifactInvalid", err)
	}
	assertFile(t, dest, []byte("someone else's"))
	noStages(t, filepath.Dir(dest))
}

// The destination of a fold file must be absent: an empty directory there
// is refused with ErrArtifactInvalid (it used to pass the check and fail
// at the rename with an untyped error).
func TestImportRefusesADirectoryAsTheFoldFile(t *testing.T) {
	dir := exported(t)
	dest := newPath(t)
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if l, err := Import(dir, dest, Options{}); !errors.Is(err, ErrArtifactInvalid) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("Import onto an empty directory: %v, want ErrArtifactInvalid", err)
	}
	if ents, err := os.ReadDir(dest); err != nil || len(ents) != 0 {
		t.Fatalf("destination directory changed: %v, %v", ents, err)
	}
	noStages(t, filepath.Dir(dest))
}
