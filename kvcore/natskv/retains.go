package natskv

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/kvcore"
)

var _ kvcore.Retainer = (*store)(nil)

// Retains reports whether the bucket's stream still holds every message
// after from: its first sequence is at most from's revision + 1. A cursor
// with no revision (not a NATS one) is never retained.
func (s *store) Retains(ctx context.Context, from kvcore.Cursor) (bool, error) {
	rev, ok := uint64(0), true
	if !from.IsNone() {
		rev, ok = from.Revision()
	}
	if !ok {
		return false, nil
	}
	st, err := s.streamState(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		err = kvcore.ErrBucketNotFound
	}
	if err != nil {
		return false, &kvcore.OpError{Op: "retains", Bucket: s.bucket, Err: mapErr(err)}
	}
	return resumeWindowOK(rev, st.first), nil
}
