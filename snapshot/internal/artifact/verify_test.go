package artifact

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/filelock"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// sealedArtifact exports a test artifact (data/real is "payload", 7 bytes).
func sealedArtifact(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "artifact")
	if _, err := stageWithPayload(t, dir).Seal("test", "1", kvcore.RevisionCursor(3), time.Unix(5, 0)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func verify(t *testing.T, dir string) error {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "imported")
	s, err := VerifyAndStage(dir, dest, DestDir, "test", func(string) error { return nil })
	if err == nil {
		s.Abort()
	}
	return err
}

func wantInvalid(t *testing.T, err error, mentions string) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), mentions) {
		t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, mentions)
	}
}

// MANIFEST.json is read up to 1 MiB: a larger one is refused, not read
// whole into memory.
func TestVerifyCapsTheManifest(t *testing.T) {
	dir := sealedArtifact(t)
	p := filepath.Join(dir, ManifestName)
	m := readFile(t, p)
	pad := func(total int) {
		os.WriteFile(p, append(bytes.Clone(m), bytes.Repeat([]byte(" "), total-len(m))...), 0o644)
	}
	pad(maxManifestSize)
	if err := verify(t, dir); err != nil {
		t.Fatalf("a %d-byte manifest: %v", maxManifestSize, err)
	}
	pad(maxManifestSize + 1)
	wantInvalid(t, verify(t, dir), "larger than")
}

// MANIFEST.json must be a regular file; a symlink to one is followed, as
// the Rust crate does, a symlink to a device is refused before reading.
func TestVerifyManifestMustBeRegular(t *testing.T) {
	dir := sealedArtifact(t)
	p := filepath.Join(dir, ManifestName)
	real := filepath.Join(t.TempDir(), "manifest")
	os.Rename(p, real)
	os.Symlink(real, p)
	if err := verify(t, dir); err != nil {
		t.Fatalf("symlink to a manifest: %v", err)
	}
	os.Remove(p)
	os.Symlink("/dev/zero", p)
	wantInvalid(t, verify(t, dir), "not a regular file")
}

// A payload file whose size is not the declared one is refused from its
// size alone: a terabyte (sparse) file is not copied into the stage first.
func TestVerifyChecksSizeBeforeCopying(t *testing.T) {
	dir := sealedArtifact(t)
	f, err := os.OpenFile(filepath.Join(dir, "data", "real"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantInvalid(t, verify(t, dir), "is 1099511627776 bytes, manifest says 7")
}

// copyVerified does not follow a symlink that replaced a payload file after
// the listing checked it.
func TestCopyVerifiedRefusesSymlink(t *testing.T) {
	tmp := t.TempDir()
	target, link, dst := filepath.Join(tmp, "target"), filepath.Join(tmp, "link"), filepath.Join(tmp, "dst")
	os.WriteFile(target, []byte("payload"), 0o644)
	os.Symlink(target, link)
	want := File{Path: "data/real", Size: 7, Blake3: hashHex(t, []byte("payload"))}
	wantInvalid(t, copyVerified(link, dst, want), "non-regular")
	if _, err := os.Lstat(dst); !os.IsNotExist(err) {
		t.Fatalf("the refused copy created %s", dst)
	}
	if err := copyVerified(target, dst, want); err != nil {
		t.Fatalf("the regular file: %v", err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Export and import stages a crash left behind are removed by the next
// export or import in the same directory; a stage in use (locked) is not.
func TestCrashLeftStagesAreRemoved(t *testing.T) {
	src := sealedArtifact(t)
	parent := t.TempDir()
	for _, name := range []string{".slipstream-import-crashed", ".slipstream-artifact-crashed", ".slipstream-import-live"} {
		os.MkdirAll(filepath.Join(parent, name, "data"), 0o755)
		os.WriteFile(filepath.Join(parent, name, "data", "half"), []byte("half a copy"), 0o644)
	}
	notStage := filepath.Join(parent, ".slipstream-import-file")
	os.WriteFile(notStage, []byte("not a stage"), 0o644)
	live, err := holdStage(t, filepath.Join(parent, ".slipstream-import-live"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	s, err := VerifyAndStage(src, filepath.Join(parent, "imported"), DestDir, "test", func(string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	s.Abort()
	st, err := NewStage(filepath.Join(parent, "exported"))
	if err != nil {
		t.Fatal(err)
	}
	st.Abort()
	for name, want := range map[string]bool{
		".slipstream-import-crashed": false, ".slipstream-artifact-crashed": false,
		".slipstream-import-live": true, ".slipstream-import-file": true,
	} {
		if _, err := os.Lstat(filepath.Join(parent, name)); (err == nil) != want {
			t.Errorf("%s: exists = %v, want %v", name, err == nil, want)
		}
	}
}

// holdStage locks an existing directory as a stage in use is locked.
func holdStage(t *testing.T, dir string) (*os.File, error) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := filelock.TryLock(d); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}
