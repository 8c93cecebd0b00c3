package artifact

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Staged is a verified copy of an artifact's payload, ready for the backend
// to check (open it, compare the cursor) and move onto the destination.
type Staged struct {
	Manifest *Manifest
	Dest     string // absolute destination path
	dir      string
}

// DataDir is the staged copy of the artifact's data/ directory.
func (s *Staged) DataDir() string { return filepath.Join(s.dir, DataDir) }

// Path is the staged copy of the manifest path p ("data/...").
func (s *Staged) Path(p string) string { return filepath.Join(s.dir, filepath.FromSlash(p)) }

// Abort removes the staging directory.
func (s *Staged) Abort() { os.RemoveAll(s.dir) }

// VerifyAndStage validates the artifact in dir for import to dest, in the
// Rust crate's order: the manifest, its backend and backend version (through
// versionOK), the destination's availability, no undeclared or non-regular
// payload files, then a hashing copy of every declared file into a staging
// directory beside dest (missing, resized and altered files are refused).
// Every refusal wraps [ErrInvalid]; nothing is created at dest.
func VerifyAndStage(dir, dest, backend string, versionOK func(string) error) (*Staged, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, invalidf("no %s in %s", ManifestName, dir)
	}
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
	if err := checkAvailable(abs); err != nil {
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
	stage, err := os.MkdirTemp(parent, ".slipstream-import-")
	if err != nil {
		return nil, fmt.Errorf("snapshot: import stage: %w", err)
	}
	s := &Staged{Manifest: m, Dest: abs, dir: stage}
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
		if err := SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

func copyVerified(src, dst string, want File) error {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return invalidf("payload file missing: %s", want.Path)
	}
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return invalidf("payload contains a non-regular file: %s", want.Path)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	n, sum, err := hashFile(in, out)
	if err != nil {
		return err
	}
	if n != want.Size {
		return invalidf("payload file %s is %d bytes, manifest says %d", want.Path, n, want.Size)
	}
	if sum != want.Blake3 {
		return invalidf("payload file %s checksum mismatch (got %s, manifest says %s)", want.Path, sum, want.Blake3)
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return out.Close()
}
