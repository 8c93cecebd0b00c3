package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/internal/artifact"
)

// Artifact identity of the append log (the Rust crate's "append-log", format
// generation "2"). Its payload is exactly data/fold.snap, a compacted PGSS file.
const (
	ArtifactBackend        = "append-log"
	ArtifactBackendVersion = "2"
	artifactPayload        = artifact.DataDir + "/fold.snap"
)

// Export writes a self-verifying copy of the fold into dir, which must be
// absent or an empty directory: data/fold.snap (the compacted fold, fsynced)
// and MANIFEST.json (sizes and BLAKE3 digests, written last). The artifact is
// assembled in a hidden directory beside dir and renamed into place, so a
// crash leaves no partial artifact at dir. Export verifies the copy by
// loading it before sealing and returns the cursor it holds.
func (l *Log) Export(ctx context.Context, dir string) (kvcore.Cursor, error) {
	if err := ctx.Err(); err != nil {
		return kvcore.Cursor{}, err
	}
	stage, err := artifact.NewStage(dir)
	if err != nil {
		return kvcore.Cursor{}, err
	}
	m, err := l.export(stage)
	if err != nil {
		stage.Abort()
		return kvcore.Cursor{}, fmt.Errorf("snapshot: export to %s: %w", dir, err)
	}
	return m, nil
}

func (l *Log) export(stage *artifact.Stage) (kvcore.Cursor, error) {
	l.mu.Lock()
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return kvcore.Cursor{}, err
	}
	snap := l.snapshotLocked()
	l.exports++ // no entry is written over another while snap is read
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.exports--
		l.unmapRetiredLocked()
		l.mu.Unlock()
	}()

	if err := os.Mkdir(stage.DataDir(), 0o755); err != nil {
		return kvcore.Cursor{}, err
	}
	target := filepath.Join(stage.DataDir(), "fold.snap")
	f, err := snap.write(&l.fs, target)
	if err != nil {
		return kvcore.Cursor{}, err
	}
	if _, err := l.fs.install(f, target); err != nil {
		f.Close()
		return kvcore.Cursor{}, err
	}
	if err := f.Close(); err != nil {
		return kvcore.Cursor{}, err
	}
	rep, err := Inspect(target)
	if err != nil {
		return kvcore.Cursor{}, err
	}
	if got := loadedCursor(rep); got != snap.cursor || rep.Keys != snap.live {
		return kvcore.Cursor{}, fmt.Errorf("%w: exported payload disagrees with live fold (cursor %v, %d keys; live %v, %d keys)",
			ErrArtifactInvalid, got, rep.Keys, snap.cursor, snap.live)
	}
	if _, err := stage.Seal(ArtifactBackend, ArtifactBackendVersion, snap.cursor, time.Now()); err != nil {
		return kvcore.Cursor{}, err
	}
	return snap.cursor, nil
}

// loadedCursor is the cursor loading the reported file gives: none when it
// holds no usable snapshot.
func loadedCursor(rep *Report) kvcore.Cursor {
	if rep.rep.empty() {
		return kvcore.Cursor{}
	}
	return rep.Cursor
}

// Import verifies the artifact in dir (manifest, backend "append-log" and
// version "2", exactly one payload file data/fold.snap, sizes and BLAKE3
// digests, a payload that loads at the manifest's cursor), moves its fold
// file to path, which must not exist, and opens it. Every refusal wraps
// [ErrArtifactInvalid] and leaves nothing at path; a file that appears at
// path during the import is refused too, never replaced.
func Import(dir, path string, opts Options) (*Log, error) {
	fsy := osFS()
	return fsy.importLog(dir, path, opts)
}

func (fsy *fsys) importLog(dir, path string, opts Options) (*Log, error) {
	staged, err := artifact.VerifyAndStage(dir, path, artifact.DestFile, ArtifactBackend, func(v string) error {
		if v != ArtifactBackendVersion {
			return fmt.Errorf("%w: append-log artifact has format generation %q, this build reads %q",
				ErrArtifactInvalid, v, ArtifactBackendVersion)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: import %s: %w", dir, err)
	}
	defer staged.Abort()
	if err := verifyStagedLog(staged); err != nil {
		return nil, fmt.Errorf("snapshot: import %s: %w", dir, err)
	}
	// A hard link, unlike a rename, fails if the destination appeared
	// since it was checked. The stage, with the other name, goes on return.
	if err := fsy.link(staged.Path(artifactPayload), staged.Dest); errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("snapshot: import %s: %w: destination %s already exists", dir, ErrArtifactInvalid, staged.Dest)
	} else if err != nil {
		return nil, fmt.Errorf("snapshot: import %s: %w", dir, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(staged.Dest)); err != nil {
		return nil, fmt.Errorf("snapshot: import %s: %w", dir, err)
	}
	return Open(path, opts)
}

func verifyStagedLog(staged *artifact.Staged) error {
	m := staged.Manifest
	if len(m.Files) != 1 || m.Files[0].Path != artifactPayload {
		return fmt.Errorf("%w: append-log artifact must hold exactly %s", ErrArtifactInvalid, artifactPayload)
	}
	want, err := m.Cursor()
	if err != nil {
		return err
	}
	rep, err := Inspect(staged.Path(artifactPayload))
	if err != nil {
		return fmt.Errorf("%w: payload does not load: %w", ErrArtifactInvalid, err)
	}
	if got := loadedCursor(rep); got != want {
		return fmt.Errorf("%w: payload cursor %v disagrees with manifest cursor %v", ErrArtifactInvalid, got, want)
	}
	return nil
}
