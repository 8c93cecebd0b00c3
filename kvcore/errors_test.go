package kvcore_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// An OpError says "kvcore:" once, however its cause is wrapped, and keeps
// the cause in its chain.
func TestOpErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *kvcore.OpError
		want string
	}{
		{"sentinel", &kvcore.OpError{Op: "entry", Bucket: "app", Key: "k", Err: kvcore.ErrNotFound}, "kvcore: entry app k: key not found"},
		{"wrapped sentinel", &kvcore.OpError{Op: "update", Bucket: "app", Key: "k", Err: fmt.Errorf("%w: nats: wrong last sequence", kvcore.ErrRevisionMismatch)},
			"kvcore: update app k: revision mismatch: nats: wrong last sequence"},
		{"bucket only", &kvcore.OpError{Op: "open", Bucket: "app", Err: kvcore.ErrBucketNotFound}, "kvcore: open app: bucket not found"},
		{"foreign cause", &kvcore.OpError{Op: "put", Bucket: "app", Key: "k", Err: errors.New("nats: timeout")}, "kvcore: put app k: nats: timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
			if cause := errors.Unwrap(tc.err); cause != tc.err.Err {
				t.Errorf("Unwrap() = %v, want %v", cause, tc.err.Err)
			}
		})
	}
}
