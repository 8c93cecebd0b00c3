package kvcore

import (
	"context"
	"io"
	"time"
)

// Objects is a bucket of named blobs (an object store), where export
// artifacts travel between hosts (see the snapshot/transport package).
// Names may contain "/". Implementations are safe for concurrent use.
type Objects interface {
	// Bucket is the object store's name.
	Bucket() string
	// Put stores the content of r under name, replacing what was there.
	Put(ctx context.Context, name string, r io.Reader) error
	// Get opens the content of name; a missing object fails with an error
	// wrapping [ErrNotFound]. The reader fails if the content read does
	// not match what was stored.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// Delete removes name; removing a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// List describes the objects whose names start with prefix.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
}

// ObjectInfo describes one object of an [Objects] bucket.
type ObjectInfo struct {
	Name     string
	Size     int64
	Modified time.Time
}
