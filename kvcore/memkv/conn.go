package memkv

import (
	"context"
	"sync"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Conn holds buckets in memory. The zero value is not usable; call [New].
type Conn struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	// session is closed by Close; stores and watches made before fail
	// with kvcore.ErrNotConnected from then on. nil while not connected.
	session chan struct{}
}

var _ kvcore.Conn = (*Conn)(nil)

// New returns a connected Conn with no buckets.
func New() *Conn {
	return &Conn{buckets: map[string]*bucket{}, session: make(chan struct{})}
}

// Connect makes a closed Conn usable again; its buckets are kept.
func (c *Conn) Connect(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		c.session = make(chan struct{})
	}
	return nil
}

// Close disconnects the stores and watches made so far.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session != nil {
		close(c.session)
		c.session = nil
	}
	return nil
}

// Healthy reports whether the Conn is connected.
func (c *Conn) Healthy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session != nil
}

// Capabilities are those of NATS JetStream KV.
func (c *Conn) Capabilities() kvcore.Capabilities {
	return kvcore.Capabilities{StreamingWatch: true, PrefixWatch: true, Purge: true, CAS: true}
}

// Store returns bucket cfg.Bucket, creating it with cfg if it does not
// exist; an existing bucket is returned unchanged.
func (c *Conn) Store(_ context.Context, cfg kvcore.StoreConfig) (kvcore.Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, &kvcore.OpError{Op: "store", Bucket: cfg.Bucket, Err: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return nil, &kvcore.OpError{Op: "store", Bucket: cfg.Bucket, Err: kvcore.ErrNotConnected}
	}
	b := c.buckets[cfg.Bucket]
	if b == nil {
		var err error
		if b, err = newBucket(cfg); err != nil {
			return nil, &kvcore.OpError{Op: "store", Bucket: cfg.Bucket, Err: err}
		}
		c.buckets[cfg.Bucket] = b
	}
	return &store{c: c, name: cfg.Bucket, session: c.session}, nil
}

// DeleteBucket deletes bucket name with all its records, as deleting a
// NATS KV bucket's stream does. Watches on it fail (wrapping
// [kvcore.ErrWatchFailed] and [kvcore.ErrBucketNotFound]); stores keep
// their name and reach a bucket created again under it, which starts its
// revisions over and has a new [kvcore.BucketIdentifier] identity.
// Deleting a missing bucket fails with ErrBucketNotFound.
func (c *Conn) DeleteBucket(name string) error {
	c.mu.Lock()
	b := c.buckets[name]
	delete(c.buckets, name)
	c.mu.Unlock()
	if b == nil {
		return &kvcore.OpError{Op: "delete-bucket", Bucket: name, Err: kvcore.ErrBucketNotFound}
	}
	b.drop()
	return nil
}

// Open returns the existing bucket named bucket; it never creates one.
func (c *Conn) Open(_ context.Context, bucket string) (kvcore.Store, error) {
	if !kvcore.ValidBucket(bucket) {
		return nil, &kvcore.OpError{Op: "open", Bucket: bucket, Err: kvcore.ErrInvalidBucket}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return nil, &kvcore.OpError{Op: "open", Bucket: bucket, Err: kvcore.ErrNotConnected}
	}
	b := c.buckets[bucket]
	if b == nil {
		return nil, &kvcore.OpError{Op: "open", Bucket: bucket, Err: kvcore.ErrBucketNotFound}
	}
	return &store{c: c, name: bucket, session: c.session}, nil
}
