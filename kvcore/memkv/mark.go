package memkv

import (
	"context"
	"fmt"

	"github.com/slipstreamkv/slipstream/kvcore"
)

var _ kvcore.BucketMarker = (*store)(nil)

// BucketMark returns a mark of the bucket's content as natskv's store
// makes it: the incarnation, the first and last revisions, the number of
// records retained and when the newest record ever written was written.
// See [kvcore.BucketMarker].
func (s *store) BucketMark(context.Context) (string, kvcore.Cursor, error) {
	b, err := s.bucket("bucket-mark", "")
	if err != nil {
		return "", kvcore.Cursor{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var at kvcore.Cursor
	var stored int64
	if b.last > 0 {
		at, stored = kvcore.RevisionCursor(b.last), b.lastAt.UnixNano()
	}
	return fmt.Sprintf("%s/%d-%d/%d/%d", b.id, b.first(), b.last, len(b.log)-b.dropped, stored), at, nil
}
