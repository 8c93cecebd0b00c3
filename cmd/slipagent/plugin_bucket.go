package main

import (
	"context"

	"github.com/slipstreamkv/slipstream/kvcore/natskv"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// bucketView reads the live entries of bucket under prefix into view: the
// view of plugin run -bucket.
func bucketView(ctx context.Context, conn *natskv.Conn, bucket, prefix string, view *host.MemView) error {
	store, err := conn.Open(ctx, bucket)
	if err != nil {
		return err
	}
	entries, err := store.Scan(ctx, prefix)
	if err != nil {
		return err
	}
	for _, e := range entries {
		rev, _ := e.Version.Revision()
		view.Put(host.Entry{Key: e.Key, Value: e.Value, Revision: rev, Version: e.Version.Bytes()})
	}
	return nil
}

// defaultCursor sets a batch without a cursor to the highest revision of
// the view (a render of a view read from a bucket is at its revision).
func defaultCursor(ctx context.Context, b *host.Batch, view *host.MemView) error {
	if b.Cursor.Revision != 0 {
		return nil
	}
	var top uint64
	err := view.Scan(ctx, "", "", func(e host.Entry) bool {
		top = max(top, e.Revision)
		return true
	})
	b.Cursor.Revision, b.Cursor.Version = top, revisionVersion(top)
	return err
}
