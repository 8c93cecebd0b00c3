package natskv

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// Stop returns at once on a connection that neither delivers nor fails:
// the watch's consumer is deleted in the background, once the server
// answers again.
func TestStopDoesNotWaitForTheServer(t *testing.T) {
	srv := natstest.Run(t)
	proxy := natstest.NewProxy(t, srv.URL())
	o := fastOpts(proxy.URL())
	o.Timeout = time.Minute
	c := connect(t, o)
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{})
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	next(t, w, eventWait) // Synced
	proxy.Stall(true)
	stopped := make(chan struct{})
	go func() {
		w.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(time.Second): // a delete would wait up to deleteTimeout
		t.Fatal("Stop waits for a server that does not answer")
	}
	if n := consumerCount(t, js, s.bucket); n != 1 {
		t.Fatalf("%d consumers while the server cannot be reached, want the watch's", n)
	}
	proxy.Stall(false)
	waitFor(t, eventWait, "consumer deleted", func() bool { return consumerCount(t, js, s.bucket) == 0 })
}

// A consumer dropped while the connection is down is deleted once it is
// back: the server would not reap it soon if its host were the one down.
func TestConsumerDroppedOfflineIsDeletedLater(t *testing.T) {
	srv := natstest.Run(t)
	proxy := natstest.NewProxy(t, srv.URL())
	c := connect(t, fastOpts(proxy.URL()))
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{})
	// Durable, so the server does not reap it by itself during the test.
	name := newConsumerName()
	cfg := jetstream.ConsumerConfig{Durable: name, DeliverSubject: "_INBOX.dropped", AckPolicy: jetstream.AckNonePolicy}
	if _, err := js.CreatePushConsumer(testCtx(t), s.stream, cfg); err != nil {
		t.Fatal(err)
	}
	proxy.SetDown(true)
	waitFor(t, eventWait, "disconnected", func() bool { return !c.Healthy() })
	s.drop(name)
	time.Sleep(3 * c.opts.Heartbeat) // ticks pass without a connection
	if n := consumerCount(t, js, s.bucket); n != 1 {
		t.Fatalf("%d consumers, want the dropped one still there", n)
	}
	proxy.SetDown(false)
	waitFor(t, eventWait, "dropped consumer deleted", func() bool { return consumerCount(t, js, s.bucket) == 0 })
}
