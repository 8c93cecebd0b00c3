package natskv

import (
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// A watch whose server goes silent — its host frozen, or the link to it
// cut, so no TCP reset ever comes — moves to another server of the
// cluster within seconds: the connection's pings notice the silence, not
// the operating system's timeouts (or nats.go's default two-minute pings)
// many minutes later.
func TestWatchLeavesSilentServer(t *testing.T) {
	cl := natstest.RunCluster(t, 3)
	proxies := map[string]*natstest.Proxy{}
	var urls []string
	for _, srv := range cl.Servers {
		p := natstest.NewProxy(t, srv.URL())
		proxies[p.URL()] = p
		urls = append(urls, p.URL())
	}
	o := fastOpts(urls...)
	o.Heartbeat = time.Second
	c := connect(t, o)
	var s *store
	waitFor(t, 30*time.Second, "an R3 bucket", func() bool {
		st, err := c.Store(testCtx(t), kvcore.StoreConfig{Bucket: "silent", Replicas: 3})
		if err != nil {
			return false
		}
		s = st.(*store)
		return true
	})
	w := startWatch(t, s, kvcore.AllKeys(), kvcore.Cursor{})
	if ev := next(t, w, eventWait); !ev.Synced {
		t.Fatalf("first event %+v, want Synced", ev)
	}

	silent := proxies[c.sess.nc.ConnectedUrl()]
	if silent == nil {
		t.Fatalf("connected to %s, not through a proxy", c.sess.nc.ConnectedUrl())
	}
	silent.Stall(true)
	defer silent.Stall(false)

	// A writer on the other servers.
	var others []string
	for u := range proxies {
		if proxies[u] != silent {
			others = append(others, u)
		}
	}
	writer := openStore(t, connect(t, fastOpts(others...)), kvcore.StoreConfig{Bucket: "silent", Replicas: 3})
	var last uint64
	waitFor(t, 30*time.Second, "a put on the servers still talking", func() bool {
		v, err := writer.Put(testCtx(t), "k", []byte("after"))
		if err != nil {
			return false
		}
		last, _ = v.Revision()
		return true
	})
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("the watch ended: %v", w.Err())
			}
			if !ev.Synced && rev(ev.Update.Version) == last {
				if now := c.sess.nc.ConnectedUrl(); proxies[now] == silent {
					t.Fatalf("the put arrived through the silent server %s", now)
				}
				return
			}
		case <-time.After(time.Until(deadline)):
			t.Fatalf("a minute after its server went silent, the watch has not delivered the put made on the others (connected to %s)", c.sess.nc.ConnectedUrl())
		}
	}
}
