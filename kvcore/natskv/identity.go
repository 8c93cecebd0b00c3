package natskv

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/kvcore"
)

var _ kvcore.BucketIdentifier = (*store)(nil)

// idTimeLayout formats a stream's creation time in a BucketID: UTC, always
// nine fractional digits, so one time has one spelling.
const idTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// BucketID returns the identity of the bucket's incarnation: its stream's
// name and creation time, e.g. "KV_app@2026-12-05T01:02:03.123456789Z". A
// bucket deleted and created again has a new stream, created later. See
// [kvcore.BucketIdentifier].
func (s *store) BucketID(ctx context.Context) (string, error) {
	if !s.sess.live() {
		return "", &kvcore.OpError{Op: "bucket-id", Bucket: s.bucket, Err: kvcore.ErrNotConnected}
	}
	st, err := s.streamState(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		err = kvcore.ErrBucketNotFound
	}
	if err != nil {
		return "", &kvcore.OpError{Op: "bucket-id", Bucket: s.bucket, Err: mapErr(err)}
	}
	return s.incarnation(st.created), nil
}

// incarnation is the BucketID of the bucket's stream created at created.
func (s *store) incarnation(created time.Time) string {
	return s.stream + "@" + created.UTC().Format(idTimeLayout)
}
