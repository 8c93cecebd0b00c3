package natskv

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/kvcore"
)

var _ kvcore.BucketMarker = (*store)(nil)

// BucketMark returns a mark of the bucket's content from one stream info
// request: the incarnation, the first and last sequences, the number of
// records retained and when the last one was stored (Unix nanoseconds),
// e.g. "KV_app@2026-12-05T01:02:03.123456789Z/1-100000/100000/1796432523123456789".
// Every record added raises the last sequence, which never goes down; every
// record removed (superseded, purged, deleted, expired) lowers the count,
// so two equal marks of one incarnation mean that no record came or went
// between them. A server that lost acknowledged records (a store restored
// from an older copy) reuses their sequences; the last record's time tells
// its new records from the lost ones even where the sequences and the
// count come out the same. See [kvcore.BucketMarker].
func (s *store) BucketMark(ctx context.Context) (string, kvcore.Cursor, error) {
	if !s.sess.live() {
		return "", kvcore.Cursor{}, &kvcore.OpError{Op: "bucket-mark", Bucket: s.bucket, Err: kvcore.ErrNotConnected}
	}
	st, err := s.streamState(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		err = kvcore.ErrBucketNotFound
	}
	if err != nil {
		return "", kvcore.Cursor{}, &kvcore.OpError{Op: "bucket-mark", Bucket: s.bucket, Err: mapErr(err)}
	}
	var at kvcore.Cursor
	if st.last > 0 {
		at = kvcore.RevisionCursor(st.last)
	}
	var stored int64 // when the last record was stored; 0 in an empty stream
	if !st.lastTime.IsZero() {
		stored = st.lastTime.UnixNano()
	}
	return fmt.Sprintf("%s/%d-%d/%d/%d", s.incarnation(st.created), st.first, st.last, st.msgs, stored), at, nil
}
