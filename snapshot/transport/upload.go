package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
	"github.com/slipstreamkv/slipstream/snapshot/internal/artifact"
)

// Upload publishes the artifact in dir under key: it validates the
// manifest (only the manifest: a tampered payload still uploads, and the
// importer's verification catches it), uploads the tar of dir as the
// content-addressed payload, then moves the pointer to it unless a newer
// artifact is already published. The tar is staged in a temporary file
// beside dir.
func (t *Transport) Upload(ctx context.Context, key, dir string) (PublishOutcome, *Pointer, error) {
	b, err := os.ReadFile(filepath.Join(dir, artifact.ManifestName))
	if err != nil {
		return PublishOutcome{}, nil, fmt.Errorf("transport: upload %s: %w", dir, err)
	}
	p, err := t.parsePointer(key, b)
	if err != nil {
		return PublishOutcome{}, nil, fmt.Errorf("transport: upload %s: %w", dir, err)
	}
	if err := t.putPayload(ctx, dir, p.Payload); err != nil {
		return PublishOutcome{}, nil, fmt.Errorf("transport: upload %s to %s in %s: %w", dir, p.Payload, t.objects.Bucket(), err)
	}
	out, err := t.swapPointer(ctx, key, b, Rank(p.Cursor))
	if err != nil {
		return PublishOutcome{}, nil, err
	}
	return out, p, nil
}

// putPayload tars dir into a temporary file beside it and uploads it.
func (t *Transport) putPayload(ctx context.Context, dir, name string) error {
	parent := filepath.Dir(filepath.Clean(dir))
	if parent == filepath.Clean(dir) {
		return fmt.Errorf("%w: artifact %s has no parent directory to stage the tar in", snapshot.ErrArtifactInvalid, dir)
	}
	f, err := os.CreateTemp(parent, ".slipstream-upload-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := pack(dir, f); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return t.objects.Put(ctx, name, f)
}

// swapPointer moves the pointer of key to manifest, of cursor rank rank,
// with a compare-and-swap on the pointer's KV revision, unless it names a
// newer artifact (upstream spec §9.7).
func (t *Transport) swapPointer(ctx context.Context, key string, manifest []byte, rank uint64) (PublishOutcome, error) {
	pk := t.pointerKey(key)
	for range MaxSwapAttempts {
		cur, err := t.pointers.Entry(ctx, pk)
		if errors.Is(err, kvcore.ErrNotFound) {
			_, err = t.pointers.Create(ctx, pk, manifest)
			if errors.Is(err, kvcore.ErrAlreadyExists) || errors.Is(err, kvcore.ErrRevisionMismatch) {
				continue
			}
			if err != nil {
				return PublishOutcome{}, fmt.Errorf("transport: publishing the pointer %s: %w", pk, err)
			}
			return PublishOutcome{Published: true}, nil
		}
		if err != nil {
			return PublishOutcome{}, fmt.Errorf("transport: reading the pointer %s: %w", pk, err)
		}
		state := PointerState{Present: true}
		var remote kvcore.Cursor
		if p, perr := t.parsePointer(key, cur.Value); perr == nil {
			state.RankKnown, state.Rank, remote = true, Rank(p.Cursor), p.Cursor
		}
		if !PointerPublishAllowed(state, rank) {
			return PublishOutcome{Remote: remote}, nil
		}
		_, err = t.pointers.Update(ctx, pk, manifest, cur.Version)
		if errors.Is(err, kvcore.ErrRevisionMismatch) || errors.Is(err, kvcore.ErrNotFound) {
			continue
		}
		if err != nil {
			return PublishOutcome{}, fmt.Errorf("transport: publishing the pointer %s: %w", pk, err)
		}
		return PublishOutcome{Published: true}, nil
	}
	return PublishOutcome{}, fmt.Errorf("transport: pointer swap for %q lost %d consecutive CAS races; giving up", key, MaxSwapAttempts)
}
