package natskv

import (
	"testing"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/kvtest"
)

// TestConformance runs the backend-neutral suite on an embedded server,
// restarting it (same port and store) to interrupt connections.
func TestConformance(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	kvtest.Run(t, kvtest.Harness{
		Open: func(t testing.TB, cfg kvcore.StoreConfig) kvcore.Store {
			return openStore(t, c, cfg)
		},
		Interrupt: func(t testing.TB) { srv.Restart() },
		Recreate: func(t testing.TB, s kvcore.Store) {
			_, js := rawJS(t, srv.URL())
			if err := js.DeleteKeyValue(testCtx(t), s.Bucket()); err != nil {
				t.Fatal(err)
			}
			openStore(t, c, kvcore.StoreConfig{Bucket: s.Bucket()})
		},
	})
}
