package memkv

import (
	"fmt"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// CopyBucket copies bucket name's records, as a copy of a server's store
// taken now, and returns restore, which puts them back: the bucket then
// looks like one whose server's store was restored from an older copy (or
// lost an unsynced tail in a crash). It keeps its identity, the records
// written since the copy are gone, and the next writes reuse their
// revisions. Watches of the bucket are not told (a real server's consumers
// are lost with its restart; a test ends them itself). restore fails with
// [kvcore.ErrBucketNotFound] once the bucket was deleted.
func (c *Conn) CopyBucket(name string) (restore func() error, err error) {
	c.mu.Lock()
	b := c.buckets[name]
	c.mu.Unlock()
	if b == nil {
		return nil, &kvcore.OpError{Op: "copy-bucket", Bucket: name, Err: kvcore.ErrBucketNotFound}
	}
	b.mu.Lock()
	var saved []record
	for _, r := range b.log {
		if !r.gone {
			saved = append(saved, *r)
		}
	}
	last, lastAt := b.last, b.lastAt
	b.mu.Unlock()
	return func() error {
		c.mu.Lock()
		current := c.buckets[name]
		c.mu.Unlock()
		if current != b {
			return &kvcore.OpError{Op: "restore-bucket", Bucket: name, Err: fmt.Errorf("%w: it was deleted since the copy", kvcore.ErrBucketNotFound)}
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		b.log, b.keys, b.dropped, b.bytes, b.last, b.lastAt = nil, map[string][]*record{}, 0, 0, last, lastAt
		for i := range saved {
			r := saved[i] // a fresh record: the copy may be restored again
			b.log = append(b.log, &r)
			b.keys[r.key] = append(b.keys[r.key], &r)
			b.bytes += r.size()
		}
		b.schedule()
		b.notify()
		return nil
	}, nil
}
