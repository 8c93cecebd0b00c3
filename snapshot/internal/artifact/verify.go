package artifact

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
)

// importStagePrefix names the hidden directories imports stage payloads in.
const importStagePrefix = ".slipstream-import-"

// Staged is a verified copy of an artifact's payload, ready for the backend
// to check (open it, compare the cursor) and move onto the destination.
type Staged struct {
	Manifest *Manifest
	Dest     string // absolute destination path
	*stageDir
}

// DataDir is the staged copy of the artifact's data/ directory.
func (s *Staged) DataDir() string { return filepath.Join(s.dir, DataDir) }

// Path is the staged copy of the manifest path p ("data/...").
func (s *Staged) Path(p string) string { return filepath.Join(s.dir, filepath.FromSlash(p)) }

// Abort removes the staging directory.
func (s *Staged) Abort() { s.remove() }

// VerifyAndStage validates the artifact in dir for import to dest, in the
// Rust crate's order: the manifest, its backend and backend version (through
// versionOK), the destination's availability (for kind), no undeclared or
// non-regular payload files, then a hashing copy of every declared file
// into a staging directory beside dest (missing, resized and altered files
// are refused), removing the ones imports that crashed left there. Every
// refusal wraps [ErrInvalid] but a destination that is not free ([Taken]);
// nothing is created at dest.
func VerifyAndStage(dir, dest string, kind DestKind, backend string, versionOK func(string) error) (*Staged, error) {
	raw, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	m, err := Decode(raw)
	if err != nil {
		return nil, err
	}
	if m.Backend != backend {
		return nil, invalidf("artifact backend is %q, expected %q", m.Backend, backend)
	}
	if err := versionOK(m.BackendVersion); err != nil {
		return nil, err
	}
	abs, parent, err := parentOf(dest)
	if err != nil {
		return nil, err
	}
	if err := checkAvailable(abs, kind); err != nil {
		return nil, err
	}
	present, _, err := listPayload(dir)
	if err != nil {
		return nil, err
	}
	declared := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		declared[f.Path] = true
	}
	for _, p := range present {
		if !declared[p] {
			return nil, invalidf("payload contains undeclared file: %s", p)
		}
	}
	sd, err := newStageDir(parent, importStagePrefix)
	if err != nil {
		return nil, fmt.Errorf("snapshot: import stage: %w", err)
	}
	s := &Staged{Manifest: m, Dest: abs, stageDir: sd}
	if err := s.copyAll(dir); err != nil {
		s.Abort()
		return nil, err
	}
	return s, nil
}

func (s *Staged) copyAll(src string) error {
	dirs := map[string]bool{s.dir: true}
	for _, f := range s.Manifest.Files {
		dst := s.Path(f.Path)
		for d := filepath.Dir(dst); !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := copyVerified(filepath.Join(src, filepath.FromSlash(f.Path)), dst, f); err != nil {
			return err
		}
	}
	for d := range dirs {
		if err := atomicfile.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// maxManifestSize caps MANIFEST.json: a real one takes about 150 bytes per
// payload file.
const maxManifestSize = 1 << 20

// readManifest reads dir's MANIFEST.json, which must be a regular file (a
// symlink to one is followed, as the Rust crate does) of at most
// maxManifestSize bytes.
func readManifest(dir string) ([]byte, error) {
	p := filepath.Join(dir, ManifestName)
	f, err := os.OpenFile(p, os.O_RDONLY|openNonBlock, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, invalidf("no %s in %s", ManifestName, dir)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, invalidf("%s is not a regular file", p)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxManifestSize {
		return nil, invalidf("%s is larger than %d bytes", p, maxManifestSize)
	}
	return raw, nil
}

// openPayload opens the payload file src, declared as want, for reading. It
// does not follow a symlink or wait on a FIFO swapped in after the listing,
// and refuses a file whose size is not the declared one before reading it.
func openPayload(src string, want File) (*os.File, error) {
	in, err := os.OpenFile(src, os.O_RDONLY|openNoFollow|openNonBlock, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, invalidf("payload file missing: %s", want.Path)
	}
	if err != nil {
		if fi, lerr := os.Lstat(src); lerr == nil && !fi.Mode().IsRegular() {
			return nil, invalidf("payload contains a non-regular file: %s", want.Path)
		}
		return nil, err
	}
	fi, err := in.Stat()
	switch {
	case err != nil:
	case !fi.Mode().IsRegular():
		err = invalidf("payload contains a non-regular file: %s", want.Path)
	case fi.Size() != want.Size:
		err = sizeMismatch(want, fi.Size())
	}
	if err != nil {
		in.Close()
		return nil, err
	}
	return in, nil
}

func sizeMismatch(want File, got int64) error {
	return invalidf("payload file %s is %d bytes, manifest says %d", want.Path, got, want.Size)
}

// copyVerified copies the payload file src to dst while hashing it. It
// reads at most one byte more than declared, so a file that grows during
// the copy is refused without being copied whole.
func copyVerified(src, dst string, want File) error {
	in, err := openPayload(src, want)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	n, sum, err := hashFile(io.LimitReader(in, want.Size+1), out)
	if err != nil {
		return err
	}
	if n != want.Size {
		return sizeMismatch(want, n)
	}
	if sum != want.Blake3 {
		return invalidf("payload file %s checksum mismatch (got %s, manifest says %s)", want.Path, sum, want.Blake3)
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return out.Close()
}
