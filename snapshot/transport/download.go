package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
	"github.com/slipstreamkv/slipstream/snapshot/internal/artifact"
)

// Download fetches the artifact the pointer of key names into dest, which
// must be absent or an empty directory. It checks that the payload's
// embedded MANIFEST.json is byte-identical to the pointer and unpacks it
// safely (see unpack) in a hidden directory beside dest, renamed into
// place at the end; file digests are left to the backend's Import. A key
// never published fails with [ErrNotPublished]; a missing payload, a
// doctored pointer or a bad payload with [snapshot.ErrArtifactInvalid].
func (t *Transport) Download(ctx context.Context, key, dest string) (*Pointer, error) {
	abs, parent, err := artifact.Available(dest)
	if err != nil {
		return nil, fmt.Errorf("transport: download %q: %w", key, err)
	}
	p, err := t.Manifest(ctx, key)
	if err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(parent, ".slipstream-download-")
	if err != nil {
		return nil, fmt.Errorf("transport: download %q: %w", key, err)
	}
	defer os.RemoveAll(stage)
	if err := t.fetch(ctx, p, stage); err != nil {
		return nil, fmt.Errorf("transport: download %q (%s in %s): %w", key, p.Payload, t.objects.Bucket(), err)
	}
	if _, _, err := artifact.Available(abs); err != nil {
		return nil, fmt.Errorf("transport: download %q: %w", key, err)
	}
	if err := os.Remove(abs); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("transport: download %q: %w", key, err)
	}
	if err := os.Rename(stage, abs); err != nil {
		return nil, fmt.Errorf("transport: download %q: %w", key, err)
	}
	if err := atomicfile.SyncDir(parent); err != nil {
		return nil, fmt.Errorf("transport: download %q: %w", key, err)
	}
	return p, nil
}

// fetch unpacks p's payload into stage and checks its manifest.
func (t *Transport) fetch(ctx context.Context, p *Pointer, stage string) error {
	rc, err := t.objects.Get(ctx, p.Payload)
	if errors.Is(err, kvcore.ErrNotFound) {
		return fmt.Errorf("%w: remote artifact object not found: %s", snapshot.ErrArtifactInvalid, p.Payload)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := unpack(rc, stage); err != nil {
		return err
	}
	// Read to the end, where the store checks the object's digest.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("%w: reading the payload: %w", snapshot.ErrArtifactInvalid, err)
	}
	embedded, err := os.ReadFile(filepath.Join(stage, artifact.ManifestName))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: downloaded artifact tar has no embedded manifest", snapshot.ErrArtifactInvalid)
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(embedded, p.Manifest) {
		return fmt.Errorf("%w: embedded manifest disagrees with the sibling manifest object", snapshot.ErrArtifactInvalid)
	}
	return nil
}
