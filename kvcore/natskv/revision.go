package natskv

import (
	"context"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// LastRevision returns the revision of the bucket's latest change (0 for a
// bucket never written): what a change written now is newer than. `slipagent
// fleet wait -after-put` waits for the hosts to reach it.
func (s *store) LastRevision(ctx context.Context) (uint64, error) {
	st, err := s.streamState(ctx)
	if err != nil {
		return 0, &kvcore.OpError{Op: "last revision", Bucket: s.bucket, Err: mapErr(err)}
	}
	return st.last, nil
}
