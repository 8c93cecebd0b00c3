package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
	"github.com/slipstreamkv/slipstream/snapshot/pebblefold"
	"github.com/slipstreamkv/slipstream/snapshot/transport"
)

// artifactPrefix is the prefix of every artifact key the agent uses in
// the bootstrap object store and KV bucket.
const artifactPrefix = "slipagent"

// bootstrapStage prefixes the scratch directories of a bootstrap and of
// export rounds in a watch's directory.
const bootstrapStage = ".slipstream-"

// artifactKey is the logical key of the artifacts a watch exchanges: its
// bucket, its fold kind and a digest of the bucket's incarnation and the
// watch's prefixes, so that only watches whose folds are interchangeable
// share artifacts, and a re-created bucket never finds the old one's.
func artifactKey(w *WatchConf, bucketID string) string {
	scope := "*" // the whole bucket
	if w.Prefixes != nil {
		p := slices.Clone(w.Prefixes)
		slices.Sort(p)
		scope = strings.Join(slices.Compact(p), "\x00")
	}
	sum := sha256.Sum256([]byte(bucketID + "\n" + scope))
	return w.Bucket + "/" + w.Fold + "-" + hex.EncodeToString(sum[:8])
}

// objectStorer is a connection that also offers object stores
// (natskv.Conn does).
type objectStorer interface {
	Objects(ctx context.Context, bucket string, create bool) (kvcore.Objects, error)
}

// transport opens the watch's bootstrap object store and the KV bucket of
// the same name. Exporters create them (create); importers only open them.
func (r *watchRunner) transport(ctx context.Context, create bool) (*transport.Transport, kvcore.Store, error) {
	name := r.conf.Bootstrap.ObjectStore
	oc, ok := r.a.conn.(objectStorer)
	if !ok {
		return nil, nil, fmt.Errorf("bootstrap object store %s: the connection offers no object store", name)
	}
	objs, err := oc.Objects(ctx, name, create)
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap object store %s: %w", name, err)
	}
	var kv kvcore.Store
	if create {
		kv, err = r.a.conn.Store(ctx, kvcore.StoreConfig{Bucket: name})
	} else {
		kv, err = r.a.conn.Open(ctx, name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap KV bucket %s: %w", name, err)
	}
	return transport.New(objs, kv, artifactPrefix), kv, nil
}

// bootstrap gives a watch whose directory is empty the fold of the newest
// artifact in its bootstrap object store, if one is published for its
// bucket, scope and fold kind, its cursor is still within the bucket's
// retention and it verifies; the watch then replays only the changes
// since. Anything else (no artifact, an expired, corrupt or foreign one,
// NATS trouble) is logged and leaves the directory empty: the watch syncs
// from the bucket as it would without the block. It fails only when ctx
// ends.
func (r *watchRunner) bootstrap(ctx context.Context) error {
	if r.conf.Bootstrap == nil {
		return nil
	}
	if fresh, err := r.freshDir(); err != nil || !fresh {
		return err
	}
	select {
	case <-r.a.connected:
	case <-ctx.Done():
		return ctx.Err()
	}
	err := r.importArtifact(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		r.log.Warn("not starting from an artifact; syncing from the bucket", "object_store", r.conf.Bootstrap.ObjectStore, "err", err)
		for _, name := range []string{stateFile, logFoldFile, diskFoldDir} {
			if rerr := os.RemoveAll(filepath.Join(r.dir, name)); rerr != nil {
				return fmt.Errorf("agent: removing a failed bootstrap's %s: %w", name, rerr)
			}
		}
	}
	return nil
}

// freshDir reports whether the watch's directory holds nothing but
// scratch directories, which it removes.
func (r *watchRunner) freshDir() (bool, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return false, fmt.Errorf("data dir: %w", err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), bootstrapStage) {
			return false, nil
		}
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(r.dir, e.Name())); err != nil {
			return false, fmt.Errorf("data dir: %w", err)
		}
	}
	return true, nil
}

// errExpired: the artifact's cursor is older than what the bucket retains.
var errExpired = errors.New("the artifact is older than what the bucket retains")

// importArtifact downloads, checks and imports the newest artifact into
// the watch's directory and records the bucket's identity beside it.
func (r *watchRunner) importArtifact(ctx context.Context) error {
	store, err := r.a.store(ctx, r.conf.Bucket)
	if err != nil {
		return err
	}
	ident, ok := store.(kvcore.BucketIdentifier)
	ret, ok2 := store.(kvcore.Retainer)
	if !ok || !ok2 {
		return fmt.Errorf("bucket %s cannot tell its identity or retention", r.conf.Bucket)
	}
	id, err := ident.BucketID(ctx)
	if err != nil {
		return err
	}
	key := artifactKey(r.conf, id)
	tr, _, err := r.transport(ctx, false)
	var p *transport.Pointer
	if err == nil {
		p, err = tr.Manifest(ctx, key)
	}
	if errors.Is(err, transport.ErrNotPublished) || errors.Is(err, kvcore.ErrBucketNotFound) {
		r.log.Info("no artifact published for this watch yet; syncing from the bucket", "object_store", r.conf.Bootstrap.ObjectStore, "key", key)
		return nil
	}
	if err != nil {
		return err
	}
	log := r.log.With("object", p.Payload, "cursor", p.Cursor.String())
	if ok, err := ret.Retains(ctx, p.Cursor); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("artifact %s at cursor %v: %w", p.Payload, p.Cursor, errExpired)
	}
	scratch, err := os.MkdirTemp(r.dir, bootstrapStage+"bootstrap-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	dir := filepath.Join(scratch, "artifact")
	if _, err := tr.Download(ctx, key, dir); err != nil {
		return err
	}
	if err := importFold(dir, r.dir, r.conf.Fold); err != nil {
		return fmt.Errorf("artifact %s: %w", p.Payload, err)
	}
	st := watchState{Bucket: r.conf.Bucket, Prefixes: r.conf.Prefixes, Fold: r.conf.Fold, BucketID: id}
	if err := st.save(r.dir); err != nil {
		return err
	}
	log.Info("started from an artifact; replaying the changes since", "exported", p.CreatedAt)
	return nil
}

// importFold verifies the artifact in dir and moves its fold to where a
// watch of fold kind kind keeps it in watchDir.
func importFold(dir, watchDir, kind string) error {
	if kind == FoldDisk {
		f, err := pebblefold.Import(dir, filepath.Join(watchDir, diskFoldDir), pebblefold.Options{})
		if err != nil {
			return err
		}
		return f.Close()
	}
	l, err := snapshot.Import(dir, filepath.Join(watchDir, logFoldFile), snapshot.Options{})
	if err != nil {
		return err
	}
	return l.Close()
}
