package artifact

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// exportStagePrefix names the hidden directories exports are assembled in.
const exportStagePrefix = ".slipstream-artifact-"

// Stage is an export in progress: a hidden directory beside the destination
// into which the backend writes its files under [Stage.DataDir].
type Stage struct {
	dest, parent string
	*stageDir
}

// NewStage checks that dest is available (absent or an empty directory) and
// creates the hidden staging directory in its parent, removing the ones
// exports that crashed left there.
func NewStage(dest string) (*Stage, error) {
	abs, parent, err := parentOf(dest)
	if err != nil {
		return nil, err
	}
	if err := checkAvailable(abs, DestDir); err != nil {
		return nil, err
	}
	sd, err := newStageDir(parent, exportStagePrefix)
	if err != nil {
		return nil, fmt.Errorf("snapshot: export stage: %w", err)
	}
	return &Stage{dest: abs, parent: parent, stageDir: sd}, nil
}

// DataDir is where the backend writes its payload. It is not created.
func (s *Stage) DataDir() string { return filepath.Join(s.dir, DataDir) }

// Abort removes the staging directory.
func (s *Stage) Abort() { s.remove() }

// Seal hashes and fsyncs the payload, writes MANIFEST.json last and renames
// the stage onto the destination, which is checked again first (it fails
// closed, leaving the destination untouched, if something appeared there).
// On failure the stage is removed.
func (s *Stage) Seal(backend, backendVersion string, cursor kvcore.Cursor, now time.Time) (*Manifest, error) {
	m, err := s.seal(backend, backendVersion, cursor, now)
	if err != nil {
		s.Abort()
		return nil, err
	}
	return m, nil
}

func (s *Stage) seal(backend, backendVersion string, cursor kvcore.Cursor, now time.Time) (*Manifest, error) {
	paths, dirs, err := listPayload(s.dir)
	if err != nil {
		return nil, err
	}
	m := &Manifest{SchemaVersion: SchemaVersion, Backend: backend, BackendVersion: backendVersion,
		CursorHex: cursor.Hex(), CreatedAtUnix: now.Unix(), Files: []File{}}
	for _, p := range paths {
		f, err := s.hashAndSync(p)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, f)
	}
	sortFiles(m.Files)
	for _, d := range dirs {
		if err := atomicfile.SyncDir(d); err != nil {
			return nil, err
		}
	}
	b, err := m.Encode()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(s.dir, ManifestName), b, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return nil, err
	}
	if err := checkAvailable(s.dest, DestDir); err != nil {
		return nil, err
	}
	if err := os.Remove(s.dest); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if err := os.Rename(s.dir, s.dest); err != nil {
		return nil, err
	}
	s.release() // the directory is the artifact now
	return m, atomicfile.SyncDir(s.parent)
}

func (s *Stage) hashAndSync(rel string) (File, error) {
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(rel)))
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	n, sum, err := hashFile(f, nil)
	if err != nil {
		return File{}, err
	}
	if err := f.Sync(); err != nil {
		return File{}, err
	}
	return File{Path: rel, Size: n, Blake3: sum}, nil
}
