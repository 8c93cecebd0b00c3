package pebblefold

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
	"github.com/slipstreamkv/slipstream/snapshot/internal/artifact"
)

// ArtifactBackend is the artifact identity of this backend. Its backend
// version is the Pebble format major version of the exported copy; Import
// accepts any version this build of Pebble can open.
const ArtifactBackend = "pebble"

// Export writes a self-verifying copy of the fold into dir (absent or an
// empty directory): a Pebble checkpoint under data/ and MANIFEST.json with
// BLAKE3 digests, written last. The copy is opened and its cursor compared
// with the live one before the artifact is sealed. Export must not run
// concurrently with Apply.
func (f *Fold) Export(ctx context.Context, dir string) (kvcore.Cursor, error) {
	if err := ctx.Err(); err != nil {
		return kvcore.Cursor{}, err
	}
	if f.opts.FS != vfs.Default {
		return kvcore.Cursor{}, fmt.Errorf("pebblefold: export needs the operating system's file system")
	}
	if err := f.acquire(); err != nil {
		return kvcore.Cursor{}, err
	}
	defer f.release()
	if err := f.writePending(ctx); err != nil {
		return kvcore.Cursor{}, err
	}
	stage, err := artifact.NewStage(dir)
	if err != nil {
		return kvcore.Cursor{}, fmt.Errorf("pebblefold: export to %s: %w", dir, err)
	}
	c, err := f.export(stage)
	if err != nil {
		stage.Abort()
		return kvcore.Cursor{}, fmt.Errorf("pebblefold: export to %s: %w", dir, err)
	}
	return c, nil
}

func (f *Fold) export(stage *artifact.Stage) (kvcore.Cursor, error) {
	live := f.Cursor()
	if err := f.db.Checkpoint(stage.DataDir(), pebble.WithFlushedWAL()); err != nil {
		return kvcore.Cursor{}, err
	}
	copyFold, err := open(stage.DataDir(), Options{}, true)
	if err != nil {
		return kvcore.Cursor{}, fmt.Errorf("%w: exported copy does not open: %w", snapshot.ErrArtifactInvalid, err)
	}
	got, format := copyFold.Cursor(), copyFold.db.FormatMajorVersion()
	if err := copyFold.Close(); err != nil {
		return kvcore.Cursor{}, err
	}
	if got != live {
		return kvcore.Cursor{}, fmt.Errorf("%w: exported copy recovered cursor %v, live fold is at %v", snapshot.ErrArtifactInvalid, got, live)
	}
	if _, err := stage.Seal(ArtifactBackend, strconv.FormatUint(uint64(format), 10), live, time.Now()); err != nil {
		return kvcore.Cursor{}, err
	}
	return live, nil
}

// Import verifies the artifact in dir (manifest, backend "pebble" with a
// format this build opens, sizes and BLAKE3 digests of every file, a copy
// that opens at the manifest's cursor), moves it to directory path, which
// must be absent or empty, and opens it. Every refusal wraps
// [snapshot.ErrArtifactInvalid] and leaves nothing at path.
func Import(dir, path string, opts Options) (*Fold, error) {
	staged, err := artifact.VerifyAndStage(dir, path, artifact.DestDir, ArtifactBackend, func(v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || pebble.FormatMajorVersion(n) > pebble.FormatNewest || pebble.FormatMajorVersion(n) < pebble.FormatMinSupported {
			return fmt.Errorf("%w: pebble artifact has format %q, this build opens %d to %d",
				snapshot.ErrArtifactInvalid, v, pebble.FormatMinSupported, pebble.FormatNewest)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebblefold: import %s: %w", dir, err)
	}
	defer staged.Abort()
	want, err := staged.Manifest.Cursor()
	if err != nil {
		return nil, err
	}
	copyFold, err := open(staged.DataDir(), Options{}, true)
	if err != nil {
		return nil, fmt.Errorf("pebblefold: import %s: %w: payload does not open: %w", dir, snapshot.ErrArtifactInvalid, err)
	}
	got := copyFold.Cursor()
	if err := copyFold.Close(); err != nil {
		return nil, err
	}
	if got != want {
		return nil, fmt.Errorf("pebblefold: import %s: %w: payload cursor %v disagrees with manifest cursor %v",
			dir, snapshot.ErrArtifactInvalid, got, want)
	}
	if err := os.Remove(staged.Dest); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("pebblefold: import %s: %w", dir, err)
	}
	if err := os.Rename(staged.DataDir(), staged.Dest); err != nil {
		return nil, fmt.Errorf("pebblefold: import %s: %w", dir, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(staged.Dest)); err != nil {
		return nil, fmt.Errorf("pebblefold: import %s: %w", dir, err)
	}
	return Open(path, opts)
}
