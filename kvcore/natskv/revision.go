package natskv

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

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

// KeyAt returns the key of the change stored at revision rev. It fails with
// kvcore.ErrNotFound when the bucket no longer holds that change (a later
// change of the same key replaced it, or it aged out). `slipagent fleet`
// uses it to judge only the watches whose scope holds the change.
func (s *store) KeyAt(ctx context.Context, rev uint64) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	st, err := s.sess.js.Stream(ctx, s.stream)
	if err != nil {
		return "", &kvcore.OpError{Op: "key at revision", Bucket: s.bucket, Err: mapErr(err)}
	}
	m, err := st.GetMsg(ctx, rev)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		err = kvcore.ErrNotFound
	}
	if err != nil {
		return "", &kvcore.OpError{Op: "key at revision", Bucket: s.bucket, Err: mapErr(err)}
	}
	key, ok := strings.CutPrefix(m.Subject, s.pre)
	if !ok {
		return "", &kvcore.OpError{Op: "key at revision", Bucket: s.bucket, Err: fmt.Errorf("revision %d has subject %q, not a key of the bucket", rev, m.Subject)}
	}
	return key, nil
}
