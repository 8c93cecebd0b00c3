package natskv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// objects is a JetStream object store bucket as a [kvcore.Objects].
type objects struct {
	sess   *session
	opts   Options
	bucket string
	os     jetstream.ObjectStore
}

var _ kvcore.Objects = (*objects)(nil)

// Objects returns the object store bucket named bucket (stream
// OBJ_<bucket>, in the connection's JetStream domain). With create set a
// missing bucket is created (file storage, one replica, no limits);
// otherwise it fails with an error wrapping [kvcore.ErrBucketNotFound].
func (c *Conn) Objects(ctx context.Context, bucket string, create bool) (kvcore.Objects, error) {
	if !kvcore.ValidBucket(bucket) {
		return nil, &kvcore.OpError{Op: "objects", Bucket: bucket, Err: kvcore.ErrInvalidBucket}
	}
	sess, err := c.session()
	if err != nil {
		return nil, &kvcore.OpError{Op: "objects", Bucket: bucket, Err: err}
	}
	tctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	ob, err := sess.js.ObjectStore(tctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) && create {
		ob, err = sess.js.CreateObjectStore(tctx, jetstream.ObjectStoreConfig{Bucket: bucket, Storage: jetstream.FileStorage})
		if errors.Is(err, jetstream.ErrBucketExists) { // another host created it meanwhile
			ob, err = sess.js.ObjectStore(tctx, bucket)
		}
	}
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, &kvcore.OpError{Op: "objects", Bucket: bucket, Err: kvcore.ErrBucketNotFound}
	}
	if err != nil {
		return nil, &kvcore.OpError{Op: "objects", Bucket: bucket, Err: mapErr(err)}
	}
	return &objects{sess: sess, opts: c.opts, bucket: bucket, os: ob}, nil
}

func (o *objects) Bucket() string { return o.bucket }

func (o *objects) fail(op, name string, err error) error {
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		err = kvcore.ErrNotFound
	}
	return &kvcore.OpError{Op: op, Bucket: o.bucket, Key: name, Err: mapErr(err)}
}

// Put stores r's content in chunks; a reader error aborts it and leaves
// the previous content of name in place.
func (o *objects) Put(ctx context.Context, name string, r io.Reader) error {
	if _, err := o.os.Put(ctx, jetstream.ObjectMeta{Name: name}, r); err != nil {
		return o.fail("object put", name, err)
	}
	return nil
}

// Get streams name's content; its reader checks the object's SHA-256
// digest at the end and fails on a mismatch.
func (o *objects) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	res, err := o.os.Get(ctx, name)
	if err != nil {
		return nil, o.fail("object get", name, err)
	}
	return res, nil
}

func (o *objects) Delete(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, o.opts.Timeout)
	defer cancel()
	if err := o.os.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return o.fail("object delete", name, err)
	}
	return nil
}

func (o *objects) List(ctx context.Context, prefix string) ([]kvcore.ObjectInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, o.opts.Timeout)
	defer cancel()
	infos, err := o.os.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, o.fail("object list", prefix, fmt.Errorf("listing: %w", err))
	}
	var out []kvcore.ObjectInfo
	for _, in := range infos {
		if strings.HasPrefix(in.Name, prefix) && !in.Deleted {
			out = append(out, kvcore.ObjectInfo{Name: in.Name, Size: int64(in.Size), Modified: in.ModTime})
		}
	}
	return out, nil
}
