package natskv

import (
	"sync"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// OnReattach hears a watch re-creating its consumer: a failed attempt while
// the server is down, then the success once it is back.
func TestOnReattachHearsEveryAttempt(t *testing.T) {
	srv := natstest.Run(t)
	var mu sync.Mutex
	var failed, succeeded int
	var heard kvcore.Scope
	o := fastOpts(srv.URL())
	o.OnReattach = func(bucket string, scope kvcore.Scope, err error) {
		mu.Lock()
		defer mu.Unlock()
		heard = scope
		if err != nil {
			failed++
		} else {
			succeeded++
		}
	}
	c := connect(t, o)
	s := openStore(t, c, kvcore.StoreConfig{})
	w, err := s.Watch(testCtx(t), kvcore.Prefixes("node."), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	srv.Shutdown()
	waitFor(t, eventWait, "a failed attempt while the server is down", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failed > 0
	})
	srv.Start()
	waitFor(t, eventWait, "the consumer re-created", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return succeeded > 0
	})
	if heard.String() != kvcore.Prefixes("node.").String() {
		t.Errorf("OnReattach heard scope %v, want the watch's", heard)
	}
	if err := w.Err(); err != nil {
		t.Errorf("the watch ended: %v", err)
	}
}
