package transport

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"lukechampine.com/blake3"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
	"github.com/slipstreamkv/slipstream/snapshot/internal/artifact"
)

// Limits of the transport (upstream spec §9.6).
const (
	// MaxPointerBytes caps a pointer (a manifest) read from the store.
	MaxPointerBytes = 1 << 20
	// MaxSwapAttempts is how many lost compare-and-swap races a pointer
	// swap tolerates before giving up.
	MaxSwapAttempts = 8
)

// ErrNotPublished: no artifact was ever published under the key (or its
// pointer was removed).
var ErrNotPublished = errors.New("transport: no artifact published")

// Transport publishes and fetches artifacts under a prefix: payloads in
// an object store, pointers in a KV store. It is safe for concurrent use.
type Transport struct {
	objects  kvcore.Objects
	pointers kvcore.Store
	prefix   string
	now      func() time.Time
}

// New returns a transport keeping payloads in objects and pointers in
// pointers, under prefix (a KV key prefix without a trailing "/", e.g.
// "artifacts"). Logical keys must be valid KV keys once prefixed.
func New(objects kvcore.Objects, pointers kvcore.Store, prefix string) *Transport {
	return &Transport{objects: objects, pointers: pointers, prefix: prefix, now: time.Now}
}

// Pointer describes the artifact a pointer names.
type Pointer struct {
	// Key is the logical artifact key.
	Key string
	// Cursor is the cursor the artifact's fold is at.
	Cursor kvcore.Cursor
	// Backend and BackendVersion identify the fold format.
	Backend, BackendVersion string
	// CreatedAt is when the artifact was exported (informational).
	CreatedAt time.Time
	// Payload is the name of the payload object.
	Payload string
	// Manifest is the pointer's bytes: the artifact's MANIFEST.json.
	Manifest []byte
}

// PublishOutcome says what an upload did to the pointer.
type PublishOutcome struct {
	// Published is true when the pointer now names the uploaded artifact;
	// false when a newer artifact was already published.
	Published bool
	// Remote is the cursor of the pointer that superseded the upload.
	Remote kvcore.Cursor
}

func (t *Transport) pointerKey(key string) string { return t.prefix + "/" + key + ".manifest.json" }

// LeaseKey is the KV key of the export lease of key.
func (t *Transport) LeaseKey(key string) string { return t.prefix + "/" + key + ".lease" }

func (t *Transport) payloadDir(key string) string { return t.prefix + "/" + key + ".payloads/" }

// payloadName is the content address of an artifact's payload.
func (t *Transport) payloadName(key string, manifest []byte, rank uint64) string {
	sum := blake3.Sum256(manifest)
	return fmt.Sprintf("%s%016x-%s.tar", t.payloadDir(key), rank, hex.EncodeToString(sum[:8]))
}

// Rank is a cursor's position as a number: its revision, or 0 for a
// cursor with none.
func Rank(c kvcore.Cursor) uint64 {
	rev, _ := c.Revision()
	return rev
}

// parsePointer decodes manifest bytes read from the pointer of key.
func (t *Transport) parsePointer(key string, b []byte) (*Pointer, error) {
	if len(b) > MaxPointerBytes {
		return nil, fmt.Errorf("%w: remote manifest for %q exceeds %d bytes", snapshot.ErrArtifactInvalid, key, MaxPointerBytes)
	}
	m, err := artifact.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("remote manifest for %q: %w", key, err)
	}
	c, err := m.Cursor()
	if err != nil {
		return nil, fmt.Errorf("remote manifest for %q: %w", key, err)
	}
	return &Pointer{
		Key: key, Cursor: c, Backend: m.Backend, BackendVersion: m.BackendVersion,
		CreatedAt: time.Unix(m.CreatedAtUnix, 0), Payload: t.payloadName(key, b, Rank(c)), Manifest: b,
	}, nil
}

// Manifest reads the pointer of key without fetching the payload. A key
// never published fails with [ErrNotPublished], a pointer that does not
// parse with [snapshot.ErrArtifactInvalid].
func (t *Transport) Manifest(ctx context.Context, key string) (*Pointer, error) {
	e, err := t.pointers.Get(ctx, t.pointerKey(key))
	if errors.Is(err, kvcore.ErrNotFound) {
		return nil, fmt.Errorf("%w under %s in %s", ErrNotPublished, t.pointerKey(key), t.pointers.Bucket())
	}
	if err != nil {
		return nil, fmt.Errorf("transport: reading the pointer %s: %w", t.pointerKey(key), err)
	}
	return t.parsePointer(key, e.Value)
}
