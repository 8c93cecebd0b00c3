//go:build unix

package artifact

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A FIFO swapped in for a payload file or the manifest is refused without
// blocking on open (a FIFO open waits for a writer).
func TestVerifyDoesNotBlockOnFIFO(t *testing.T) {
	tmp := t.TempDir()
	fifo := filepath.Join(tmp, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, copyVerified(fifo, filepath.Join(tmp, "dst"), File{Path: "data/real", Size: 7}), "non-regular")

	dir := sealedArtifact(t)
	p := filepath.Join(dir, ManifestName)
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, verify(t, dir), "not a regular file")
}
